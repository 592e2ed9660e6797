import type { TokenLogprob, TopLogprob } from "@corral/shared";
import type { LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";

/** The log probability reported for a token whose probability underflowed to 0 (as OpenAI does). */
export const MIN_LOGPROB = -9999;

/** How many tokens before a token are passed to the detokenizer as its context. */
const CONTEXT_TOKENS = 4;

type Evaluate = LlamaContextSequence["evaluate"];

/**
 * Records each generated token's probability while LlamaCompletion or LlamaChat generates
 * on a sequence. node-llama-cpp 3.21 exposes token probabilities only on
 * `LlamaContextSequence.evaluateWithMetadata`, not through its chat or completion
 * classes, and both generate through `sequence.evaluate`; so while attached, the
 * sequence's `evaluate` is replaced (an own property over the prototype's method) by one
 * that asks `evaluateWithMetadata` for the probabilities and keeps them. `detach` puts
 * the method back.
 *
 * The probabilities are those llama.cpp samples from: after `logit_bias`, the penalties,
 * the grammar, `temperature`, `top_k` and `top_p` (llama.cpp server's
 * `post_sampling_probs`). At temperature 0 the sampler is greedy and they are the softmax
 * of the raw logits (with the grammar and biases applied).
 *
 * Tokens wait in `pending` until `take()` hands them over with the text they became, so
 * tokens whose text is never released (a stop string that matched) are never reported.
 */
export class TokenLogprobs {
  readonly #model: LlamaModel;
  readonly #top: number;
  #pending: TokenLogprob[] = [];
  /** The last few tokens, prompt included: detokenizer context for the next one. */
  #context: Token[];
  #sequence: LlamaContextSequence | null = null;

  /**
   * @param top - alternatives to list per token (`top_logprobs`, 0–20).
   * @param promptTail - the prompt's last tokens, so the first generated token detokenizes with its leading space.
   */
  constructor(model: LlamaModel, top: number, promptTail: readonly Token[] = []) {
    this.#model = model;
    this.#top = top;
    this.#context = promptTail.slice(-CONTEXT_TOKENS);
  }

  /** Starts recording the tokens `sequence.evaluate` generates. */
  attach(sequence: LlamaContextSequence): void {
    if (this.#sequence) throw new Error("TokenLogprobs is already attached");
    this.#sequence = sequence;
    // With top 0 the selected token's probability (`confidence`) is enough, and much cheaper than the whole distribution.
    const metadata =
      this.#top > 0 ? ({ probabilities: true, confidence: true } as const) : ({ confidence: true } as const);
    const record = (token: Token, confidence: number | undefined, probabilities: Map<Token, number> | undefined) =>
      this.#record(token, confidence, probabilities);
    const evaluate: Evaluate = async function* (tokens, options) {
      const iterator = sequence.evaluateWithMetadata(tokens, metadata, options);
      let input: void | Token | Token[] = undefined;
      try {
        while (true) {
          const { value, done } = await iterator.next(input);
          if (done) return;
          const withProbabilities = value as { probabilities?: Map<Token, number> };
          record(value.token, value.confidence, withProbabilities.probabilities);
          input = yield value.token;
        }
      } finally {
        await iterator.return();
      }
    };
    Object.defineProperty(sequence, "evaluate", { value: evaluate, configurable: true, writable: true });
  }

  /** Puts the sequence's own `evaluate` back. Idempotent. */
  detach(): void {
    if (!this.#sequence) return;
    delete (this.#sequence as { evaluate?: Evaluate }).evaluate;
    this.#sequence = null;
  }

  /** The tokens recorded since the last call, in order. */
  take(): TokenLogprob[] {
    const taken = this.#pending;
    this.#pending = [];
    return taken;
  }

  #record(token: Token, confidence: number | undefined, probabilities: Map<Token, number> | undefined): void {
    if (this.#model.isEogToken(token)) return;
    const context = this.#context;
    const probability = probabilities?.get(token) ?? confidence ?? 0;
    const top: TopLogprob[] = [];
    if (probabilities && this.#top > 0) {
      // The map is sorted, most likely first.
      for (const [alternative, p] of probabilities) {
        if (top.length >= this.#top || p <= 0) break;
        top.push(this.#entry(alternative, p, context));
      }
    }
    this.#pending.push({ ...this.#entry(token, probability, context), top_logprobs: top });
    this.#context = [...context, token].slice(-CONTEXT_TOKENS);
  }

  #entry(token: Token, probability: number, context: readonly Token[]): TopLogprob {
    const text = this.#model.detokenize([token], false, context);
    return { token: text, bytes: [...Buffer.from(text, "utf8")], logprob: toLogprob(probability) };
  }
}

/**
 * ln(p), never above 0 (float rounding) nor below MIN_LOGPROB, rounded to 8 decimals: the
 * job record passes through Redis' Lua cjson, which keeps 14 significant digits, and the
 * streamed value must equal the recorded one.
 */
export function toLogprob(probability: number): number {
  if (!(probability > 0)) return MIN_LOGPROB;
  const logprob = Math.max(MIN_LOGPROB, Math.min(0, Math.log(probability)));
  return Math.round(logprob * 1e8) / 1e8 || 0;
}
