import type { PromptCounter } from "@corral/llama";
import type { ChatHistoryItem, LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";
import type { Logger } from "pino";

/**
 * Prompt-prefix reuse across a model's jobs, as llama.cpp's server does with `cache_prompt`.
 *
 * A sequence keeps its evaluated tokens (prompt and generated text) after a job that
 * ended cleanly. The next job on it is handed to LlamaCompletion or LlamaChat as usual:
 * both align the sequence with the new prompt (`adaptStateToTokens`: the matching prefix
 * stays in the KV cache, the rest is erased) and evaluate only what follows, always
 * re-evaluating at least the prompt's last token to sample from.
 *
 * What this class adds is the bookkeeping:
 * - `held` records the tokens a sequence was left holding, so the pool can prefer the
 *   free sequence with the longest common prefix (`score`, O(prompt) per sequence, no copy);
 * - a sequence is trusted only when its job ended cleanly: after a failure or a
 *   cancellation (possibly mid-evaluation) it is cleared, as every sequence was before;
 * - `reused` counts the prompt tokens whose evaluation was skipped.
 *
 * Off (`enabled: false`), or for models where dropping a range of the KV cache forces a
 * re-evaluation anyway (recurrent models, sliding-window attention), every sequence is
 * cleared after each job, as before.
 */
export class PrefixReuse {
  readonly enabled: boolean;
  readonly #log: Logger;
  readonly #sequences: number;
  /** What each sequence holds, for sequences left by a clean job; absent: not trusted (cleared before use). */
  readonly #held = new Map<LlamaContextSequence, readonly Token[]>();

  constructor(options: { enabled: boolean; model: LlamaModel; sequences: number; logger: Logger }) {
    this.enabled = options.enabled && supportsPrefixReuse(options.model);
    this.#sequences = options.sequences;
    this.#log = options.logger;
  }

  /**
   * The sequence pool's preference for a job: the free sequence holding the most of its
   * prompt. Undefined (first free sequence) when reuse is off or there is one sequence.
   */
  preference(
    prompts: PromptCounter,
    input: { kind: "completion"; tokens: Token[] } | { kind: "chat"; history: ChatHistoryItem[] },
  ): ((sequence: LlamaContextSequence) => number) | undefined {
    if (!this.enabled || this.#sequences < 2) return undefined;
    const bos = prompts.beginningToken;
    const prompt =
      input.kind === "chat"
        ? prompts.tokenizeChatHistory(input.history)
        : bos === null
          ? input.tokens
          : [bos, ...input.tokens];
    return (sequence) => this.score(sequence, prompt);
  }

  /** Tokens of `prompt` the sequence holds already, from the start. */
  score(sequence: LlamaContextSequence, prompt: readonly Token[]): number {
    return commonPrefixLength(this.#held.get(sequence) ?? [], prompt);
  }

  /**
   * Before a job: clears the sequence unless it holds what a clean job left (or reuse is
   * off). The sequence then holds only tokens whose KV state is whole.
   */
  async prepare(sequence: LlamaContextSequence): Promise<void> {
    if (sequence.nextTokenIndex === 0) return;
    if (this.enabled && this.#held.has(sequence)) return;
    await sequence.clearHistory();
  }

  /**
   * After a clean job: how many of its `promptTokens` were kept from the previous job
   * rather than evaluated. The sequence's tokens now start with the prompt, so the common
   * prefix of what it held before and holds now is what was kept, capped below the
   * prompt's length (its last token is always evaluated again).
   */
  reused(sequence: LlamaContextSequence, promptTokens: number): number {
    const before = this.#held.get(sequence);
    if (!this.enabled || before === undefined || before.length === 0) return 0;
    const kept = commonPrefixLength(before, sequence.contextTokens);
    return Math.max(0, Math.min(kept, promptTokens - 1));
  }

  /**
   * After a job: keeps the sequence's tokens when the job ended cleanly and reuse is on;
   * otherwise clears it (a half-evaluated state must not be matched against the next prompt).
   */
  async release(sequence: LlamaContextSequence, clean: boolean): Promise<void> {
    if (sequence.disposed) {
      this.#held.delete(sequence);
      return;
    }
    if (this.enabled && clean) {
      this.#held.set(sequence, sequence.contextTokens);
      return;
    }
    this.#held.delete(sequence);
    try {
      await sequence.clearHistory();
    } catch (error) {
      this.#log.warn({ err: error }, "could not clear a sequence after a job; it is cleared again before the next one");
    }
  }
}

/** Whether erasing the end of a sequence keeps its start's KV state (what prefix reuse relies on). */
export function supportsPrefixReuse(model: LlamaModel): boolean {
  const insights = model.fileInsights;
  return !insights.isRecurrent && (insights.swaSize ?? 0) === 0;
}

/** Length of the longest common prefix of `a` and `b`. */
export function commonPrefixLength(a: readonly Token[], b: readonly Token[]): number {
  const length = Math.min(a.length, b.length);
  let i = 0;
  while (i < length && a[i] === b[i]) i++;
  return i;
}
