import { resolve } from "node:path";
import type { Logger } from "pino";
import type { CatalogModel } from "@corral/shared";
import type { LoadedView } from "./claim-policy.js";
import type { ClaimMetrics, FailureKind, ModelEngine, ModelHandle } from "./types.js";

/** One model on this slot: loading, or loaded and serving up to `model.sequences` jobs. */
export interface LoadedEntry {
  model: CatalogModel;
  /** Memory it holds on this slot (its requirement), bytes. */
  bytes: number;
  /** Settles when the load finishes; rejects with the engine's error. */
  ready: Promise<ModelHandle>;
  /** Set once loaded. */
  handle: ModelHandle | null;
  /** Jobs claimed for it (waiting for the load or running). */
  busy: number;
  loadStartedAt: number;
  loadedAt: number | null;
  lastUsedAt: number;
}

export interface LoadedModelsOptions {
  engine: ModelEngine;
  classify: (error: unknown) => FailureKind;
  metrics: ClaimMetrics;
  logger: Logger;
  /** Folder the catalog's file names are relative to. */
  modelsDir: string;
  keepAliveMs: number;
  oomCooldownMs: number;
  now: () => number;
}

/**
 * The models this slot has loaded or is loading, by catalog id: loads them through the
 * engine, unloads idle ones (keep-alive, or to make room), and remembers models whose load
 * ran out of memory so the policy skips them for the cooldown.
 */
export class LoadedModels {
  readonly #o: LoadedModelsOptions;
  readonly #entries = new Map<string, LoadedEntry>();
  /** Model id → until when it counts as not fitting here. */
  readonly #blocked = new Map<string, number>();
  readonly #listeners = new Set<() => void>();

  constructor(options: LoadedModelsOptions) {
    this.#o = options;
  }

  /** Calls `listener` whenever a load settles (the claim loop re-checks at once). */
  onChange(listener: () => void): void {
    this.#listeners.add(listener);
  }

  get(model: string): LoadedEntry | undefined {
    return this.#entries.get(model);
  }

  entries(): LoadedEntry[] {
    return [...this.#entries.values()];
  }

  /** Whether a load is in progress. */
  get loading(): boolean {
    for (const entry of this.#entries.values()) if (entry.handle === null) return true;
    return false;
  }

  get busySequences(): number {
    let busy = 0;
    for (const entry of this.#entries.values()) busy += entry.busy;
    return busy;
  }

  /** Models in their out-of-memory cooldown at `now`. */
  blocked(now: number): Set<string> {
    for (const [model, until] of this.#blocked) if (until <= now) this.#blocked.delete(model);
    return new Set(this.#blocked.keys());
  }

  /** The policy's view: a loading model counts as loaded and busy with its claimed jobs. */
  views(): LoadedView[] {
    return this.entries().map((entry) => ({
      model: entry.model.id,
      sequences: entry.model.sequences,
      busySequences: entry.busy,
      bytes: entry.bytes,
      lastUsedAt: entry.lastUsedAt,
    }));
  }

  /**
   * Starts loading `model`; the entry is there at once (busy with the jobs claimed for it).
   * A failed load removes it; out of memory also starts the model's cooldown.
   */
  load(model: CatalogModel, bytes: number): LoadedEntry {
    const { engine, metrics, now } = this.#o;
    const at = now();
    const log = this.#o.logger.child({ model: model.id });
    log.info({ requirement_bytes: bytes }, "loading model");
    const loading = engine.load({
      modelId: model.id,
      path: resolve(this.#o.modelsDir, model.file),
      contextSize: model.context_size,
      sequences: model.sequences,
      kind: model.kind,
    });
    const entry: LoadedEntry = {
      model,
      bytes,
      ready: loading,
      handle: null,
      busy: 0,
      loadStartedAt: at,
      loadedAt: null,
      lastUsedAt: at,
    };
    entry.ready = loading.then(
      (handle) => {
        entry.handle = handle;
        entry.loadedAt = now();
        const seconds = (handle.loadMs || entry.loadedAt - at) / 1000;
        metrics.modelLoad.observe({ model: model.id }, seconds);
        metrics.setLoaded(model.id, true);
        // Start the model's out-of-memory counter at 0, so rate() and alerts see a series before the first event.
        metrics.oomReleases.inc({ model: model.id }, 0);
        log.info({ seconds }, "model loaded");
        this.#changed();
        return handle;
      },
      (error: unknown) => {
        if (this.#entries.get(model.id) === entry) this.#entries.delete(model.id);
        const kind = this.#o.classify(error);
        if (kind === "out-of-memory") {
          this.#blocked.set(model.id, now() + this.#o.oomCooldownMs);
          log.warn(
            { err: error, cooldownMs: this.#o.oomCooldownMs },
            "out of memory loading the model; it counts as not fitting on this slot for the cooldown",
          );
        } else {
          log.error({ err: error, kind }, "loading the model failed");
        }
        this.#changed();
        throw error;
      },
    );
    // Each job awaits `ready` itself; this only keeps an unobserved rejection from surfacing.
    entry.ready.catch(() => undefined);
    this.#entries.set(model.id, entry);
    return entry;
  }

  /** The entry's model once loaded, and how long the caller waited for the load (0 when it was loaded). */
  async ready(entry: LoadedEntry): Promise<{ handle: ModelHandle; loadMs: number }> {
    if (entry.handle) return { handle: entry.handle, loadMs: 0 };
    const since = this.#o.now();
    const handle = await entry.ready;
    return { handle, loadMs: Math.max(0, this.#o.now() - since) };
  }

  /** Unloads the models idle for `keepAliveMs`. */
  async unloadExpired(now: number): Promise<void> {
    for (const entry of this.entries())
      if (entry.handle && entry.busy === 0 && now - entry.lastUsedAt >= this.#o.keepAliveMs)
        await this.unload(entry, "idle past keep-alive");
  }

  /** Forgets the entry and disposes its model (after its load, when still loading). */
  async unload(entry: LoadedEntry, why: string): Promise<void> {
    if (this.#entries.get(entry.model.id) === entry) this.#entries.delete(entry.model.id);
    this.#o.metrics.setLoaded(entry.model.id, false);
    try {
      const handle = entry.handle ?? (await entry.ready.catch(() => null));
      await handle?.dispose();
      this.#o.logger.info({ model: entry.model.id, why }, "unloaded model");
    } catch (error) {
      this.#o.logger.warn({ err: error, model: entry.model.id }, "disposing a model failed");
    }
  }

  async unloadAll(why: string): Promise<void> {
    for (const entry of this.entries()) await this.unload(entry, why);
  }

  #changed(): void {
    for (const listener of this.#listeners) listener();
  }
}
