import { z } from "zod";
import {
  InvalidRequestError,
  LogitBias,
  MAX_REASONING_BUDGET,
  MAX_TOKENS_LIMIT,
  MAX_TOP_LOGPROBS,
  Penalty,
  ReasoningEffort,
  ResponseFormat,
  ValidationError,
  reasoningBudget,
  type JobChatMessage,
  type JobTools,
} from "@corral/shared";
import { UnsupportedFeatureError } from "./errors.js";
import { ToolCallsField, jobToolCalls, parseTools } from "./tools.js";

/**
 * Request bodies of the OpenAI-compatible endpoints. Unknown fields are ignored (as
 * OpenAI-compatible servers do: clients send fields Corral does not know); known fields
 * with a wrong type or out of range are a 400 naming the field; known features Corral
 * cannot honour (tools, images…) are a 400 saying so. Every optional field also
 * accepts `null`, which clients send for "unset".
 */

/** Most choices (`n`) one request may ask for. */
export const MAX_N = 8;
/** Most candidates `best_of` may generate per prompt. */
export const MAX_BEST_OF = 20;
/** Most jobs one request may create (prompts × n, or prompts × best_of). */
export const MAX_CHOICES = 64;
/** Most embedding inputs per request. */
export const MAX_EMBEDDING_INPUTS = 2048;
/** Most stop sequences, and the longest one. */
export const MAX_STOP = 4;
export const MAX_STOP_LENGTH = 256;

const Stop = z.union([z.string().max(MAX_STOP_LENGTH), z.array(z.string().max(MAX_STOP_LENGTH)).max(MAX_STOP)], {
  error: `expected a string or an array of at most ${MAX_STOP} strings of at most ${MAX_STOP_LENGTH} characters`,
});

/** Sampling fields shared by chat and text completions. */
const SamplingFields = {
  model: z.string().min(1).max(256),
  max_tokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  /** Extension: llama.cpp's top-k. */
  top_k: z.number().int().min(0).max(1_000_000).nullish(),
  seed: z.number().int().nullish(),
  stop: Stop.nullish(),
  n: z.number().int().min(1).max(MAX_N).nullish(),
  user: z.string().max(512).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  response_format: ResponseFormat.nullish(),
  frequency_penalty: Penalty.nullish(),
  presence_penalty: Penalty.nullish(),
  logit_bias: LogitBias.nullish(),
};

const ContentPart = z.looseObject({ type: z.string() });

const Message = z.looseObject({
  role: z.enum(["system", "developer", "user", "assistant", "tool", "function"]),
  content: z
    .union([z.string(), z.array(ContentPart)], { error: "expected a string or an array of content parts" })
    .nullish(),
  name: z.string().nullish(),
  tool_calls: z.array(z.unknown()).nullish(),
  tool_call_id: z.string().nullish(),
  function_call: z.unknown().optional(),
  audio: z.unknown().optional(),
});

const ChatCompletionBody = z.object({
  ...SamplingFields,
  messages: z.array(Message).min(1).max(1024),
  max_completion_tokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).nullish(),
  tools: z.array(z.unknown()).nullish(),
  tool_choice: z.unknown().optional(),
  parallel_tool_calls: z.boolean().nullish(),
  functions: z.array(z.unknown()).nullish(),
  function_call: z.unknown().optional(),
  audio: z.unknown().optional(),
  modalities: z.array(z.string()).nullish(),
  prediction: z.unknown().optional(),
  reasoning_effort: ReasoningEffort.nullish(),
  /** Extension: the thought-token budget of a reasoning model, in place of `reasoning_effort`'s. */
  max_reasoning_tokens: z.number().int().min(0).max(MAX_REASONING_BUDGET).nullish(),
});

const CompletionBody = z.object({
  ...SamplingFields,
  prompt: z.union([z.string(), z.array(z.union([z.string(), z.number(), z.array(z.number())])).min(1)], {
    error: "expected a string or a non-empty array of strings",
  }),
  echo: z.boolean().nullish(),
  best_of: z.number().int().min(1).max(MAX_BEST_OF).nullish(),
  /** The legacy API's limit is 5; Corral allows as many alternatives as chat's `top_logprobs`. */
  logprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).nullish(),
  suffix: z.string().nullish(),
});

const EmbeddingBody = z.object({
  model: z.string().min(1).max(256),
  input: z.union(
    [
      z.string(),
      z
        .array(z.union([z.string(), z.number(), z.array(z.number())]))
        .min(1)
        .max(MAX_EMBEDDING_INPUTS),
    ],
    { error: `expected a string or an array of 1 to ${MAX_EMBEDDING_INPUTS} strings` },
  ),
  encoding_format: z.enum(["float", "base64"]).nullish(),
  dimensions: z.number().int().min(1).nullish(),
  user: z.string().max(512).nullish(),
});

/** Sampling settings of a request, as jobs take them. */
export interface Sampling {
  /** Absent: the endpoint's default. */
  max_tokens?: number;
  temperature: number;
  top_p?: number;
  top_k?: number;
  /** As given (any integer); jobs get it folded into 0..2^32-1. */
  seed?: number;
  stop?: string[];
  response_format?: ResponseFormat;
  frequency_penalty?: number;
  presence_penalty?: number;
  logit_bias?: LogitBias;
  /**
   * Return each token's log probability with this many alternatives (chat: `top_logprobs`,
   * completions: `logprobs`). Absent: no logprobs.
   */
  logprobs?: number;
  /** Chat: the thought-token budget on reasoning models (`reasoning_effort` or `max_reasoning_tokens`). */
  reasoning_budget?: number;
}

interface Common {
  model: string;
  n: number;
  stream: boolean;
  /** `stream_options.include_usage`. */
  includeUsage: boolean;
  sampling: Sampling;
  user?: string;
}

export interface ChatRequest extends Common {
  messages: JobChatMessage[];
  /** The request's tools and how it may call them; null: no tools. */
  tools: JobTools | null;
}

export interface CompletionRequest extends Common {
  /** One or more prompts; each gets `n` choices. */
  prompts: string[];
  echo: boolean;
  /**
   * Candidates generated per prompt (≥ n); the n with the highest mean token logprob are
   * returned. Equal to `n` when not asked for.
   */
  bestOf: number;
  /** Whether the client asked for logprobs (best_of makes the jobs record them regardless). */
  logprobs: boolean;
}

export interface EmbeddingRequest {
  model: string;
  inputs: string[];
  encoding: "float" | "base64";
  dimensions?: number;
  user?: string;
}

/** OpenAI's default temperature (Corral's native API defaults to 0.8). */
export const OPENAI_DEFAULT_TEMPERATURE = 1;

/** `POST /v1/chat/completions`. @throws InvalidRequestError (400) naming the field. */
export function parseChatRequest(body: unknown): ChatRequest {
  const parsed = ChatCompletionBody.safeParse(body);
  if (!parsed.success) throw ValidationError.fromZod(parsed.error);
  const b = parsed.data;
  rejectCommonUnsupported(b);
  if (b.top_logprobs != null && b.logprobs !== true) {
    throw new InvalidRequestError("`top_logprobs` is only allowed when `logprobs` is true.", "top_logprobs");
  }
  const tools = parseTools(b.tools, b.tool_choice, b.parallel_tool_calls, b.response_format);
  if (b.functions?.length) {
    unsupported("functions", "The legacy `functions` are not supported; send `tools`.");
  }
  if (b.function_call != null && b.function_call !== "none" && b.function_call !== "auto") {
    unsupported("function_call", "The legacy `function_call` is not supported; send `tool_choice`.");
  }
  if (b.audio != null) unsupported("audio", "Audio output is not supported.");
  if (b.modalities && b.modalities.some((m) => m !== "text")) {
    unsupported("modalities", "Only the `text` modality is supported.", "unsupported_value");
  }
  if (b.prediction != null) unsupported("prediction", "Predicted outputs (`prediction`) are not supported.");

  // Tool results name their function through the assistant call they answer.
  const names = new Map<string, string>();
  for (const message of b.messages) {
    for (const call of message.tool_calls ?? []) {
      const parsed = z.object({ id: z.string(), function: z.object({ name: z.string() }) }).safeParse(call);
      if (parsed.success) names.set(parsed.data.id, parsed.data.function.name);
    }
  }
  const messages = b.messages.map((message, i) => toChatMessage(message, i, names));
  const maxTokens = b.max_completion_tokens ?? b.max_tokens ?? undefined;
  if (b.reasoning_effort != null && b.max_reasoning_tokens != null) {
    throw new InvalidRequestError(
      "Give either `reasoning_effort` or `max_reasoning_tokens`, not both.",
      "max_reasoning_tokens",
    );
  }
  const budget = reasoningBudget(b);
  return {
    ...common(b),
    sampling: {
      ...sampling(b),
      ...(maxTokens !== undefined ? { max_tokens: maxTokens } : {}),
      ...(b.logprobs === true ? { logprobs: b.top_logprobs ?? 0 } : {}),
      ...(budget !== undefined ? { reasoning_budget: budget } : {}),
    },
    messages,
    tools,
  };
}

/** `POST /v1/completions`. @throws InvalidRequestError (400) naming the field. */
export function parseCompletionRequest(body: unknown): CompletionRequest {
  const parsed = CompletionBody.safeParse(body);
  if (!parsed.success) throw ValidationError.fromZod(parsed.error);
  const b = parsed.data;
  rejectCommonUnsupported(b);
  if (b.suffix) unsupported("suffix", "`suffix` (insertion) is not supported.");
  const n = b.n ?? 1;
  const bestOf = b.best_of ?? n;
  if (bestOf < n) throw new InvalidRequestError(`\`best_of\` (${bestOf}) must be at least \`n\` (${n}).`, "best_of");
  if (bestOf > n && b.stream === true) {
    throw new InvalidRequestError("`best_of` greater than `n` cannot be streamed.", "best_of");
  }
  const logprobs = b.logprobs != null;
  if (logprobs && b.echo === true) {
    unsupported("logprobs", "`logprobs` with `echo` (the prompt's logprobs) is not supported.", "unsupported_value");
  }
  const prompts = typeof b.prompt === "string" ? [b.prompt] : b.prompt.map((p, i) => promptText(p, i));
  if (prompts.length * bestOf > MAX_CHOICES) {
    throw new InvalidRequestError(
      `This request asks for ${prompts.length * bestOf} completions (prompts × ${bestOf > n ? "best_of" : "n"}); at most ${MAX_CHOICES} are allowed.`,
      "prompt",
    );
  }
  // best_of ranks candidates by their tokens' logprobs, so its jobs record them (with no alternatives unless asked).
  const jobLogprobs = logprobs ? b.logprobs! : bestOf > n ? 0 : undefined;
  return {
    ...common(b),
    sampling: {
      ...sampling(b),
      ...(b.max_tokens != null ? { max_tokens: b.max_tokens } : {}),
      ...(jobLogprobs !== undefined ? { logprobs: jobLogprobs } : {}),
    },
    prompts,
    echo: b.echo ?? false,
    bestOf,
    logprobs,
  };
}

/** `POST /v1/embeddings`. @throws InvalidRequestError (400) naming the field. */
export function parseEmbeddingRequest(body: unknown): EmbeddingRequest {
  const parsed = EmbeddingBody.safeParse(body);
  if (!parsed.success) throw ValidationError.fromZod(parsed.error);
  const b = parsed.data;
  const inputs = typeof b.input === "string" ? [b.input] : b.input.map((input, i) => embeddingText(input, i));
  inputs.forEach((input, i) => {
    if (input === "") {
      throw new InvalidRequestError(
        "Invalid value for `input`: empty strings cannot be embedded.",
        typeof b.input === "string" ? "input" : `input.${i}`,
      );
    }
  });
  return {
    model: b.model,
    inputs,
    encoding: b.encoding_format ?? "float",
    ...(b.dimensions != null ? { dimensions: b.dimensions } : {}),
    ...(b.user != null ? { user: b.user } : {}),
  };
}

type CommonBody = z.infer<z.ZodObject<typeof SamplingFields>>;

function rejectCommonUnsupported(b: CommonBody): void {
  if (b.stream_options != null && b.stream !== true) {
    throw new InvalidRequestError("`stream_options` is only allowed when `stream` is true.", "stream_options");
  }
}

function common(b: CommonBody): Omit<Common, "sampling"> {
  return {
    model: b.model,
    n: b.n ?? 1,
    stream: b.stream ?? false,
    includeUsage: b.stream_options?.include_usage ?? false,
    ...(b.user != null ? { user: b.user } : {}),
  };
}

function sampling(b: CommonBody): Sampling {
  const stop = typeof b.stop === "string" ? [b.stop] : (b.stop ?? []);
  const nonEmpty = stop.filter((s) => s !== "");
  const format = b.response_format;
  return {
    temperature: b.temperature ?? OPENAI_DEFAULT_TEMPERATURE,
    ...(b.top_p != null ? { top_p: b.top_p } : {}),
    ...(b.top_k != null ? { top_k: b.top_k } : {}),
    ...(b.seed != null ? { seed: b.seed } : {}),
    ...(nonEmpty.length ? { stop: nonEmpty } : {}),
    ...(format != null && format.type !== "text" ? { response_format: format } : {}),
    ...(b.frequency_penalty ? { frequency_penalty: b.frequency_penalty } : {}),
    ...(b.presence_penalty ? { presence_penalty: b.presence_penalty } : {}),
    ...(b.logit_bias && Object.keys(b.logit_bias).length > 0 ? { logit_bias: b.logit_bias } : {}),
  };
}

type MessageBody = z.infer<typeof Message>;

function toChatMessage(message: MessageBody, i: number, names: ReadonlyMap<string, string>): JobChatMessage {
  const at = `messages.${i}`;
  if (message.role === "function") {
    unsupported(`${at}.role`, "Messages with role `function` are not supported; use `tool`.", "unsupported_value");
  }
  if (message.tool_calls?.length) {
    if (message.role !== "assistant") {
      throw new InvalidRequestError(`Only assistant messages carry \`tool_calls\`.`, `${at}.tool_calls`);
    }
    const calls = ToolCallsField.safeParse(message.tool_calls);
    if (!calls.success) throw ValidationError.fromZod(calls.error, `${at}.tool_calls.`);
    const text = message.content == null || message.content === "" ? "" : messageText(message, at);
    return { role: "assistant", content: text, tool_calls: jobToolCalls(calls.data, at) };
  }
  if (message.role === "tool") {
    if (!message.tool_call_id) {
      throw new InvalidRequestError(`A \`tool\` message needs \`tool_call_id\`.`, `${at}.tool_call_id`);
    }
    const name = names.get(message.tool_call_id);
    return {
      role: "tool",
      content: messageText(message, at),
      tool_call_id: message.tool_call_id,
      ...(name !== undefined ? { name } : {}),
    };
  }
  if (message.function_call != null)
    unsupported(`${at}.function_call`, "`function_call` in messages is not supported.");
  if (message.audio != null) unsupported(`${at}.audio`, "Audio in messages is not supported.");
  const role = message.role === "developer" ? "system" : message.role;
  return { role, content: messageText(message, at) };
}

/** A message's text: its string, or its text parts joined with newlines. */
function messageText(message: MessageBody, at: string): string {
  const content = message.content;
  if (content == null) {
    throw new InvalidRequestError(
      `Invalid value for \`${at}.content\`: expected a string or an array of text parts.`,
      `${at}.content`,
    );
  }
  if (typeof content === "string") return content;
  const texts = content.map((part, j) => {
    const param = `${at}.content.${j}`;
    if (part.type !== "text") {
      unsupported(
        param,
        `Content parts of type \`${part.type}\` are not supported; only \`text\`.`,
        "unsupported_value",
      );
    }
    if (typeof part.text !== "string") {
      throw new InvalidRequestError(`Invalid value for \`${param}.text\`: expected a string.`, `${param}.text`);
    }
    return part.text;
  });
  return texts.join("\n");
}

function promptText(prompt: string | number | number[], i: number): string {
  if (typeof prompt === "string") return prompt;
  unsupported(`prompt.${i}`, "Token-id prompts are not supported; send text.", "unsupported_value");
}

function embeddingText(input: string | number | number[], i: number): string {
  if (typeof input === "string") return input;
  unsupported(`input.${i}`, "Token-id inputs are not supported; send text.", "unsupported_value");
}

function unsupported(
  param: string,
  message: string,
  code: "unsupported_parameter" | "unsupported_value" = "unsupported_parameter",
): never {
  throw new UnsupportedFeatureError(message, param, code);
}
