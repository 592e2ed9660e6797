import { randomBytes } from "node:crypto";
import type { TokenLogprob, Usage } from "@corral/shared";
import type { ToolCall } from "./tools.js";

/**
 * Response bodies and stream chunks in OpenAI's exact shapes. Nothing Corral-specific
 * goes in a body; job ids, workers and timings travel in `x-corral-*` headers.
 */

export type OpenAIFinishReason = "stop" | "length" | "tool_calls";

export interface OpenAIUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Reasoning models only: how many of `completion_tokens` were thought tokens. */
  completion_tokens_details?: { reasoning_tokens: number };
}

/** `chatcmpl-…` / `cmpl-…`: 24 random URL-safe characters. */
export const completionId = (kind: "chat" | "completion"): string =>
  `${kind === "chat" ? "chatcmpl" : "cmpl"}-${randomBytes(18).toString("base64url")}`;

/**
 * Usage summed over choices, with OpenAI's `total_tokens`, and `completion_tokens_details`
 * when any choice ran on a reasoning model (its usage counts `reasoning_tokens`).
 */
export function sumUsage(usages: readonly Usage[]): OpenAIUsage {
  let prompt = 0;
  let completion = 0;
  let reasoning: number | null = null;
  for (const usage of usages) {
    prompt += usage.prompt_tokens;
    completion += usage.completion_tokens;
    if (usage.reasoning_tokens !== undefined) reasoning = (reasoning ?? 0) + usage.reasoning_tokens;
  }
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    ...(reasoning !== null ? { completion_tokens_details: { reasoning_tokens: reasoning } } : {}),
  };
}

/** What a finished choice produced. */
export interface ChoiceOutput {
  text: string;
  finish_reason: OpenAIFinishReason;
  /** When the request asked for logprobs: its tokens', in order. */
  logprobs?: readonly TokenLogprob[];
  /** Chat: the calls the reply makes (its content is then null). */
  tool_calls?: readonly ToolCall[];
  /** Chat on a reasoning model: its thoughts (`message.reasoning_content`); absent for other models. */
  reasoning?: string;
}

/** Chat's `logprobs`: `{content, refusal}`, each token with its `top_logprobs` (most likely first). */
export const chatLogprobs = (tokens: readonly TokenLogprob[]) => ({
  content: tokens.map((t) => ({
    token: t.token,
    logprob: t.logprob,
    bytes: t.bytes,
    top_logprobs: t.top_logprobs.map((top) => ({ token: top.token, logprob: top.logprob, bytes: top.bytes })),
  })),
  refusal: null,
});

/**
 * The legacy completions `logprobs`: parallel arrays, `top_logprobs` one object per token
 * from token text to logprob (a text two alternatives share keeps the likelier), and
 * `text_offset` the character offset of each token in the choice's text, from `offset`.
 */
export function completionLogprobs(tokens: readonly TokenLogprob[], offset = 0) {
  const text_offset: number[] = [];
  let at = offset;
  for (const t of tokens) {
    text_offset.push(at);
    at += t.token.length;
  }
  return {
    tokens: tokens.map((t) => t.token),
    token_logprobs: tokens.map((t) => t.logprob),
    top_logprobs: tokens.map((t) => {
      const top: Record<string, number> = {};
      for (const alternative of t.top_logprobs)
        if (!(alternative.token in top)) top[alternative.token] = alternative.logprob;
      return top;
    }),
    text_offset,
  };
}

/** Identity shared by a response and all of its chunks. */
export interface CompletionHead {
  id: string;
  /** Unix seconds. */
  created: number;
  model: string;
}

export const chatCompletion = (head: CompletionHead, choices: readonly ChoiceOutput[], usage: OpenAIUsage) => ({
  id: head.id,
  object: "chat.completion" as const,
  created: head.created,
  model: head.model,
  choices: choices.map((choice, index) => ({
    index,
    message: {
      role: "assistant" as const,
      content: choice.tool_calls && choice.text === "" ? null : choice.text,
      ...(choice.reasoning !== undefined ? { reasoning_content: choice.reasoning } : {}),
      refusal: null,
      ...(choice.tool_calls ? { tool_calls: choice.tool_calls } : {}),
    },
    logprobs: choice.logprobs ? chatLogprobs(choice.logprobs) : null,
    finish_reason: choice.finish_reason,
  })),
  usage,
});

export const textCompletion = (head: CompletionHead, choices: readonly ChoiceOutput[], usage: OpenAIUsage) => ({
  id: head.id,
  object: "text_completion" as const,
  created: head.created,
  model: head.model,
  choices: choices.map((choice, index) => ({
    text: choice.text,
    index,
    logprobs: choice.logprobs ? completionLogprobs(choice.logprobs) : null,
    finish_reason: choice.finish_reason,
  })),
  usage,
});

/** With `stream_options.include_usage`, every chunk has `usage: null` and a last chunk carries the usage. */
const usageField = (includeUsage: boolean) => (includeUsage ? { usage: null } : {});

/**
 * A streamed tool call, with its place in the reply's calls: the whole call in one delta,
 * or (forced calls, streamed as generated) its first delta with `id`, `type` and `name`,
 * then deltas of only `function.arguments` text.
 */
export type ToolCallDelta = (ToolCall & { index: number }) | { index: number; function: { arguments: string } };

export type ChatDelta =
  | { role: "assistant"; content: string }
  | { content: string }
  /** A chunk of a reasoning model's thoughts (DeepSeek's field, read by OpenAI-compatible clients). */
  | { reasoning_content: string }
  | { tool_calls: ToolCallDelta[] }
  | Record<string, never>;

export const chatChunk = (
  head: CompletionHead,
  index: number,
  delta: ChatDelta,
  finishReason: OpenAIFinishReason | null,
  includeUsage: boolean,
  logprobs: readonly TokenLogprob[] | null = null,
) => ({
  id: head.id,
  object: "chat.completion.chunk" as const,
  created: head.created,
  model: head.model,
  choices: [{ index, delta, logprobs: logprobs ? chatLogprobs(logprobs) : null, finish_reason: finishReason }],
  ...usageField(includeUsage),
});

export const textChunk = (
  head: CompletionHead,
  index: number,
  text: string,
  finishReason: OpenAIFinishReason | null,
  includeUsage: boolean,
  logprobs: { tokens: readonly TokenLogprob[]; offset: number } | null = null,
) => ({
  id: head.id,
  object: "text_completion" as const,
  created: head.created,
  model: head.model,
  choices: [
    {
      text,
      index,
      logprobs: logprobs ? completionLogprobs(logprobs.tokens, logprobs.offset) : null,
      finish_reason: finishReason,
    },
  ],
  ...usageField(includeUsage),
});

/** The last chunk with `stream_options.include_usage`: no choices, the usage of them all. */
export const usageChunk = (head: CompletionHead, kind: "chat" | "completion", usage: OpenAIUsage) => ({
  id: head.id,
  object: kind === "chat" ? ("chat.completion.chunk" as const) : ("text_completion" as const),
  created: head.created,
  model: head.model,
  choices: [],
  usage,
});

/** `POST /v1/embeddings` reply; `base64` is little-endian float32, as OpenAI encodes it. */
export function embeddingList(
  model: string,
  vectors: readonly (readonly number[])[],
  encoding: "float" | "base64",
  promptTokens: number,
) {
  return {
    object: "list" as const,
    data: vectors.map((vector, index) => ({
      object: "embedding" as const,
      index,
      embedding: encoding === "base64" ? toBase64Float32(vector) : [...vector],
    })),
    model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  };
}

export function toBase64Float32(vector: readonly number[]): string {
  const buffer = Buffer.alloc(vector.length * 4);
  vector.forEach((value, i) => buffer.writeFloatLE(value, i * 4));
  return buffer.toString("base64");
}
