import type { CatalogModel } from "@corral/shared";
import type { LoadedView } from "./claim-policy.js";
import type { ModelHandle } from "./types.js";

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

/** The models this slot has loaded or is loading, by catalog id. */
export class LoadedModels {
  readonly #entries = new Map<string, LoadedEntry>();

  get(model: string): LoadedEntry | undefined {
    return this.#entries.get(model);
  }

  add(entry: LoadedEntry): void {
    this.#entries.set(entry.model.id, entry);
  }

  /** Forgets the entry (the caller disposes its handle). */
  delete(entry: LoadedEntry): void {
    if (this.#entries.get(entry.model.id) === entry) this.#entries.delete(entry.model.id);
  }

  get loading(): boolean {
    for (const entry of this.#entries.values()) if (entry.handle === null) return true;
    return false;
  }

  entries(): LoadedEntry[] {
    return [...this.#entries.values()];
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

  get busySequences(): number {
    let busy = 0;
    for (const entry of this.#entries.values()) busy += entry.busy;
    return busy;
  }
}
