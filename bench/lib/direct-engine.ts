import { performance } from "node:perf_hooks";
import {
  LlamaCompletion,
  LlamaLogLevel,
  getLlama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
} from "node-llama-cpp";

export interface DirectEngineOptions {
  modelPath: string;
  /** Contexts, each standing for one Corral slot. */
  slots: number;
  /** Sequences per context. */
  sequences: number;
  /** @defaultValue 1 */
  threads?: number;
  /** Per sequence. @defaultValue 512 */
  contextSize?: number;
  /** The GPU backend node-llama-cpp picks, full offload. @defaultValue false (CPU) */
  gpu?: boolean;
}

export interface DirectRun {
  wallMs: number;
  jobs: number;
  completionTokens: number;
  /** Sum over jobs of the time spent in generation (prompt evaluation included). */
  engineMs: number;
}

/**
 * The direct llama.cpp baseline: one process, one model, `slots` contexts of `sequences`
 * sequences with the same threads as a Corral slot, and a loop that hands each free
 * sequence the next prompt. This is what a user would write without Corral.
 */
export class DirectEngine {
  readonly #model: LlamaModel;
  readonly #contexts: LlamaContext[];
  readonly #free: LlamaContextSequence[];
  readonly #waiters: ((sequence: LlamaContextSequence) => void)[] = [];
  readonly parallelism: number;

  private constructor(model: LlamaModel, contexts: LlamaContext[], sequences: LlamaContextSequence[]) {
    this.#model = model;
    this.#contexts = contexts;
    this.#free = sequences;
    this.parallelism = sequences.length;
  }

  static async create(options: DirectEngineOptions): Promise<DirectEngine> {
    const llama = await getLlama({ gpu: options.gpu ? "auto" : false, build: "never", logLevel: LlamaLogLevel.error });
    const model = await llama.loadModel({ modelPath: options.modelPath, gpuLayers: options.gpu ? "max" : 0 });
    const contexts: LlamaContext[] = [];
    for (let i = 0; i < options.slots; i++)
      contexts.push(
        await model.createContext({
          contextSize: options.contextSize ?? 512,
          sequences: options.sequences,
          threads: options.threads ?? 1,
        }),
      );
    // Interleaved, so that with 2 slots × 1 sequence both contexts work at once.
    const sequences: LlamaContextSequence[] = [];
    for (let s = 0; s < options.sequences; s++) for (const context of contexts) sequences.push(context.getSequence());
    return new DirectEngine(model, contexts, sequences);
  }

  /** One completion on the next free sequence. */
  async runOne(prompt: string, maxTokens: number): Promise<{ completionTokens: number; generationMs: number }> {
    const sequence = this.#free.shift() ?? (await new Promise<LlamaContextSequence>((r) => this.#waiters.push(r)));
    try {
      const started = performance.now();
      const before = sequence.tokenMeter.getState().usedOutputTokens;
      const completion = new LlamaCompletion({ contextSequence: sequence });
      try {
        await completion.generateCompletionWithMeta(prompt, {
          maxTokens,
          temperature: 0,
          repeatPenalty: false,
          disableContextShift: true,
        });
      } finally {
        completion.dispose({ disposeSequence: false });
      }
      const generationMs = performance.now() - started;
      const completionTokens = sequence.tokenMeter.getState().usedOutputTokens - before;
      await sequence.clearHistory();
      return { completionTokens, generationMs };
    } finally {
      const waiter = this.#waiters.shift();
      if (waiter) waiter(sequence);
      else this.#free.push(sequence);
    }
  }

  /** Runs every prompt, `parallelism` at a time. */
  async runAll(prompts: readonly string[], maxTokens: number): Promise<DirectRun> {
    let next = 0;
    let completionTokens = 0;
    let engineMs = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: this.parallelism }, async () => {
        while (next < prompts.length) {
          const result = await this.runOne(prompts[next++]!, maxTokens);
          completionTokens += result.completionTokens;
          engineMs += result.generationMs;
        }
      }),
    );
    return { wallMs: performance.now() - started, jobs: prompts.length, completionTokens, engineMs };
  }

  async dispose(): Promise<void> {
    for (const context of this.#contexts) await context.dispose();
    await this.#model.dispose();
  }
}
