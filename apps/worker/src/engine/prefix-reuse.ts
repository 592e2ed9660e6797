import type { PromptCounter } from "@corral/llama";
import type { ChatHistoryItem, ChatModelFunctions, LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";
import type { Logger } from "pino";

/** The fewest prompt tokens a job evaluates, however much of its prompt a sequence holds. */
export const MIN_EVALUATED = 2;

/**
 * Prompt-prefix reuse across a model's jobs, as llama.cpp's server does with `cache_prompt`.
 *
 * A sequence keeps its evaluated tokens (prompt and generated text) after a job that
 * ended cleanly. Before the next job on it, `prepare` erases what follows the prefix it
 * shares with the new prompt; LlamaCompletion or LlamaChat then align the sequence with
 * the prompt as they always do (`adaptStateToTokens`) and evaluate only the rest.
 *
 * The bookkeeping:
 * - `held` records the tokens a sequence was left holding, so the pool can prefer the
 *   free sequence with the longest common prefix (`preference`, O(prompt) per sequence);
 * - a sequence is trusted only when its job ended cleanly: after a failure or a
 *   cancellation (possibly mid-evaluation) it is cleared, as every sequence was before;
 * - the last MIN_EVALUATED prompt tokens are always evaluated, in one batch: llama.cpp's
 *   CPU arithmetic for a batch of one token differs in the last bits from a longer
 *   batch's, and that changed a greedy choice of stories260K now and then (a prompt run
 *   twice, its last token alone the second time);
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
  /** Tokens `prepare` kept in each sequence for the job it runs. */
  readonly #kept = new Map<LlamaContextSequence, number>();

  constructor(options: { enabled: boolean; model: LlamaModel; sequences: number; logger: Logger }) {
    this.enabled = options.enabled && supportsPrefixReuse(options.model);
    this.#sequences = options.sequences;
    this.#log = options.logger;
  }

  /** The tokens the job's prompt will put in a sequence, to compare with what sequences hold; null when reuse is off. */
  promptOf(
    prompts: PromptCounter,
    input:
      | { kind: "completion"; tokens: Token[] }
      | { kind: "chat"; history: ChatHistoryItem[]; functions?: ChatModelFunctions | undefined },
  ): Token[] | null {
    if (!this.enabled) return null;
    if (input.kind === "chat") return prompts.tokenizeChatHistory(input.history, input.functions);
    const bos = prompts.beginningToken;
    return bos === null ? input.tokens : [bos, ...input.tokens];
  }

  /**
   * The sequence pool's preference for a job: the free sequence holding the most of its
   * prompt. Undefined (first free sequence) when reuse is off or there is one sequence.
   */
  preference(prompt: readonly Token[] | null): ((sequence: LlamaContextSequence) => number) | undefined {
    if (prompt === null || this.#sequences < 2) return undefined;
    return (sequence) => commonPrefixLength(this.#held.get(sequence) ?? [], prompt);
  }

  /**
   * Before a job: clears the sequence unless it holds what a clean job left and reuse is
   * on; else erases what follows the prefix it shares with `prompt`, and at least the
   * prompt's last MIN_EVALUATED tokens.
   */
  async prepare(sequence: LlamaContextSequence, prompt: readonly Token[] | null): Promise<void> {
    this.#kept.delete(sequence);
    if (sequence.nextTokenIndex === 0) return;
    const held = this.#held.get(sequence);
    if (prompt === null || held === undefined) {
      await sequence.clearHistory();
      return;
    }
    const keep = Math.min(commonPrefixLength(held, prompt), Math.max(0, prompt.length - MIN_EVALUATED));
    if (keep < sequence.nextTokenIndex)
      await sequence.eraseContextTokenRanges([{ start: keep, end: sequence.nextTokenIndex }]);
    this.#kept.set(sequence, keep);
  }

  /**
   * After a clean job: how many of its prompt's tokens were kept from the previous job
   * rather than evaluated. At most what `prepare` kept; fewer when LlamaChat's own
   * alignment erased more (its tokens differ from the ones compared): the common prefix of
   * what the sequence held before and holds now.
   */
  reused(sequence: LlamaContextSequence): number {
    const kept = this.#kept.get(sequence) ?? 0;
    const before = this.#held.get(sequence);
    if (kept === 0 || before === undefined) return 0;
    return Math.min(kept, commonPrefixLength(before, sequence.contextTokens));
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
