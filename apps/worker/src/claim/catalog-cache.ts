import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { Catalog, laneName, type CatalogModel, type RedisKeys } from "@corral/shared";

/**
 * The published model catalog (`keys.catalog`), re-read at most every `refreshMs` when its
 * version (`keys.catalogVersion`) changed, and indexed by lane name. A catalog that fails to parse keeps the previous one.
 */
export class CatalogCache {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #refreshMs: number;
  readonly #log: Logger;
  #raw: string | null = null;
  #version: string | null = null;
  #byLane = new Map<string, CatalogModel>();
  #readAt = -Infinity;

  constructor(options: { redis: Redis; keys: RedisKeys; refreshMs: number; logger: Logger }) {
    this.#redis = options.redis;
    this.#keys = options.keys;
    this.#refreshMs = options.refreshMs;
    this.#log = options.logger;
  }

  /** The lanes of the catalog's models. */
  lanes(): string[] {
    return [...this.#byLane.keys()];
  }

  /** The catalog model served by `lane`, as of the last refresh. */
  byLane(lane: string): CatalogModel | undefined {
    return this.#byLane.get(lane);
  }

  async refresh(now: number): Promise<void> {
    if (now - this.#readAt < this.#refreshMs) return;
    this.#readAt = now;
    // The catalog's version first (a few bytes): the catalog itself only when it changed,
    // so thousands of slots do not each read a large catalog every refresh. A scheduler
    // that writes no version (an older one) gets the catalog read every time.
    const version = await this.#redis.get(this.#keys.catalogVersion);
    if (version !== null && version === this.#version) return;
    const raw = await this.#redis.get(this.#keys.catalog);
    this.#version = version;
    if (raw === this.#raw) return;
    if (raw === null) {
      this.#raw = null;
      this.#byLane = new Map();
      return;
    }
    try {
      const catalog = Catalog.parse(JSON.parse(raw));
      this.#byLane = new Map(catalog.models.map((model) => [laneName(model.id), model]));
      this.#raw = raw;
      this.#log.debug({ models: catalog.models.length }, "read the model catalog");
    } catch (error) {
      this.#log.warn({ err: error }, "the published catalog does not parse; keeping the previous one");
    }
  }
}
