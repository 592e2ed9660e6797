import { createHash } from "node:crypto";
import { watch, type FSWatcher } from "node:fs";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { Catalog, type CatalogModel, type RedisKeys } from "@corral/shared";
import { scanModels } from "./scan-models.js";
import type { ModelCatalogView } from "./types.js";

export interface ModelCatalogOptions {
  /** Connection the catalog is published on. Not owned: the caller closes it. */
  redis: Redis;
  keys: RedisKeys;
  /** Folder holding the `.gguf` files and an optional `models.yaml`. */
  modelsDir: string;
  /**
   * Context size per sequence for models that `models.yaml` does not configure; capped
   * at the model's training context.
   * @defaultValue 4096
   */
  defaultContextSize?: number;
  /**
   * Parallel sequences per loaded model, unless `models.yaml` says otherwise.
   * @defaultValue 1
   */
  defaultSequences?: number;
  logger: Logger;
  /**
   * Called after a refresh that changed the catalog, with the new models.
   * @defaultValue none
   */
  onChange?: (models: readonly CatalogModel[]) => void;
  /**
   * Called after every refresh that published, changed or not, with the models (e.g. to
   * fail the waiting jobs of models that stayed gone). Not awaited; it must not throw.
   * @defaultValue none
   */
  onScanned?: (models: readonly CatalogModel[]) => void;
  /**
   * Clock for `updated_at`, in ms.
   * @defaultValue Date.now
   */
  now?: () => number;
}

/**
 * The scheduler's model catalog: scans the models folder, then publishes the result to
 * Redis (`keys.catalog`) so every scheduler replica and worker sees the same one.
 */
export class ModelCatalog implements ModelCatalogView {
  readonly #options: Required<Omit<ModelCatalogOptions, "onChange" | "onScanned">>;
  readonly #onChange: (models: readonly CatalogModel[]) => void;
  readonly #onScanned: (models: readonly CatalogModel[]) => void;
  readonly #log: Logger;
  #catalog: Catalog = { models: [], updated_at: 0 };
  #sorted: readonly CatalogModel[] = [];
  #byName = new Map<string, CatalogModel>();
  #refreshing: Promise<Catalog> = Promise.resolve(this.#catalog);
  #published = false;

  private constructor(options: ModelCatalogOptions) {
    this.#options = { defaultContextSize: 4096, defaultSequences: 1, now: Date.now, ...options };
    this.#log = options.logger.child({ component: "catalog" });
    this.#onChange = options.onChange ?? (() => {});
    this.#onScanned = options.onScanned ?? (() => {});
  }

  /** Scans the models folder and publishes the catalog. Throws on a bad `models.yaml`. */
  static async create(options: ModelCatalogOptions): Promise<ModelCatalog> {
    const catalog = new ModelCatalog(options);
    await catalog.refresh();
    return catalog;
  }

  /**
   * Rescans the folder and republishes. Calls run one after another; a failed refresh
   * (a bad `models.yaml`, Redis down) keeps the previous catalog and rejects.
   */
  refresh(): Promise<Catalog> {
    const next = this.#refreshing.catch(() => undefined).then(() => this.#refreshOnce());
    this.#refreshing = next;
    return next;
  }

  /**
   * {@link refresh} for a rescan nobody waits on (a timer, SIGHUP): a failure is logged
   * and keeps the previous catalog. Never rejects.
   */
  async rescan(): Promise<void> {
    try {
      await this.refresh();
    } catch (error) {
      this.#log.warn({ err: error }, "rescanning the models folder failed; keeping the previous catalog");
    }
  }

  /**
   * Rescans the folder every `intervalMs`, so models added, removed or reconfigured are
   * served without a restart, until the returned function is called. A rescan still
   * running when the next is due is not doubled.
   */
  rescanEvery(intervalMs: number): () => void {
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      void this.rescan().finally(() => {
        running = false;
      });
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /**
   * Watches the models folder (`fs.watch`): a `.gguf` (or `models.yaml`) added, removed or
   * replaced starts a rescan once the folder has been quiet for `debounceMs` (or, while
   * events keep coming, 4 × `debounceMs` after the first), so a burst is scanned once. Keep {@link rescanEvery} beside it: a watch can
   * miss changes (network file systems, the folder itself replaced) or fail to start (no
   * inotify watches left), which is logged. Returns a function that stops watching.
   */
  watch(debounceMs = 500): () => void {
    const { modelsDir } = this.#options;
    let timer: NodeJS.Timeout | null = null;
    let watcher: FSWatcher | null = null;
    const stop = () => {
      if (timer) clearTimeout(timer);
      timer = null;
      watcher?.close();
      watcher = null;
    };
    try {
      // Events that keep coming (a long download into the folder) postpone the rescan at
      // most 4 × debounceMs, so other changes are not held back by it.
      let pendingSince: number | null = null;
      watcher = watch(modelsDir, { persistent: false }, () => {
        if (timer) clearTimeout(timer);
        const now = Date.now();
        pendingSince ??= now;
        const delay = Math.max(0, Math.min(debounceMs, pendingSince + 4 * debounceMs - now));
        timer = setTimeout(() => {
          timer = null;
          pendingSince = null;
          void this.rescan();
        }, delay);
        timer.unref();
      });
      watcher.on("error", (error) => {
        this.#log.warn({ err: error, modelsDir }, "watching the models folder failed; periodic rescans only");
        stop();
      });
      this.#log.debug({ modelsDir, debounceMs }, "watching the models folder");
    } catch (error) {
      this.#log.warn({ err: error, modelsDir }, "cannot watch the models folder; periodic rescans only");
    }
    return stop;
  }

  /** Every model, sorted by id. */
  list(): readonly CatalogModel[] {
    return this.#sorted;
  }

  /** A model by id or alias. */
  resolve(name: string): CatalogModel | undefined {
    return this.#byName.get(name);
  }

  /** The catalog as last published. */
  get catalog(): Catalog {
    return this.#catalog;
  }

  async #refreshOnce(): Promise<Catalog> {
    const { redis, keys, modelsDir, defaultContextSize, defaultSequences, logger, now } = this.#options;
    const models = await scanModels({ modelsDir, defaultContextSize, defaultSequences, logger });
    const sorted = [...models].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const catalog: Catalog = { models: sorted, updated_at: now() };
    // The version changes only when the models do (not with `updated_at`): a slot reads it,
    // and the catalog only when it changed.
    const version = createHash("sha256").update(JSON.stringify(sorted)).digest("base64url").slice(0, 22);
    await redis.multi().set(keys.catalog, JSON.stringify(catalog)).set(keys.catalogVersion, version).exec();

    const byName = new Map<string, CatalogModel>();
    for (const model of sorted) byName.set(model.id, model);
    for (const model of sorted) for (const alias of model.aliases) if (!byName.has(alias)) byName.set(alias, model);
    const before = new Set(this.#sorted.map((m) => m.id));
    const changed = !this.#published || JSON.stringify(sorted) !== JSON.stringify(this.#sorted);
    this.#catalog = catalog;
    this.#sorted = Object.freeze(sorted);
    this.#byName = byName;
    this.#published = true;
    const ids = sorted.map((m) => m.id);
    if (changed) {
      const now = new Set(ids);
      const added = ids.filter((id) => !before.has(id));
      const removed = [...before].filter((id) => !now.has(id));
      this.#log.info({ models: ids, added, removed }, "published catalog with %d models", sorted.length);
      try {
        this.#onChange(this.#sorted);
      } catch (error) {
        this.#log.warn({ err: error }, "a catalog change listener threw");
      }
    } else {
      // A periodic rescan that found nothing new (the key is written again all the same,
      // in case Redis lost it).
      this.#log.debug({ models: ids }, "models folder unchanged");
    }
    try {
      this.#onScanned(this.#sorted);
    } catch (error) {
      this.#log.warn({ err: error }, "a catalog scan listener threw");
    }
    return catalog;
  }
}

/** Reads the published catalog; null when none has been published. Validates it with {@link Catalog}. */
export async function readCatalog(redis: Redis, keys: RedisKeys): Promise<Catalog | null> {
  const json = await redis.get(keys.catalog);
  if (json === null) return null;
  return Catalog.parse(JSON.parse(json));
}
