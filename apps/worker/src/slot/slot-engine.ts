import type { ModelEngine, ModelHandle } from "../claim/types.js";
import type { WhisperEngine } from "../engine/index.js";

/**
 * A slot's engines behind one `load`: catalog models of `kind: "whisper"` load with the
 * Whisper engine, the rest with llama.cpp's. Both kinds may be loaded at once; the claim
 * loop fits them against the slot's memory together.
 */
export class SlotEngine implements ModelEngine {
  readonly #llm: ModelEngine;
  readonly #whisper: Pick<WhisperEngine, "load" | "close">;

  constructor(engines: { llm: ModelEngine; whisper: Pick<WhisperEngine, "load" | "close"> }) {
    this.#llm = engines.llm;
    this.#whisper = engines.whisper;
  }

  load(options: Parameters<ModelEngine["load"]>[0]): Promise<ModelHandle> {
    if (options.kind === "whisper") return this.#whisper.load(options);
    return this.#llm.load(options);
  }

  /** Closes both engines, each in its own try. */
  async close(): Promise<void> {
    const errors: unknown[] = [];
    for (const engine of [this.#whisper, this.#llm]) {
      try {
        await engine.close();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, "closing the slot's engines failed");
  }
}
