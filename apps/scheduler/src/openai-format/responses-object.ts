import { randomBytes } from "node:crypto";
import type { JobToolCall, TokenLogprob, Usage } from "@corral/shared";
import { chatLogprobs } from "./responses.js";
import type { ResponseSettings } from "./responses-request.js";

/**
 * The `/v1/responses` response object and its output items, in OpenAI's Responses shapes.
 * Nothing is stored: `store` is always false and `previous_response_id` null. As on the
 * other routes, Corral's job ids travel in `x-corral-*` headers, not in the body.
 */

/** `resp_…`, `msg_…`, `fc_…`, `rs_…`: a prefix and 24 random URL-safe characters. */
export const responsesId = (prefix: "resp" | "msg" | "fc" | "rs"): string =>
  `${prefix}_${randomBytes(18).toString("base64url")}`;

/** Identity shared by a response and its stream's events. */
export interface ResponseHead {
  id: string;
  /** Unix seconds. */
  created_at: number;
  model: string;
}

export type ResponseStatus = "in_progress" | "completed" | "incomplete" | "failed";

export interface OutputText {
  type: "output_text";
  text: string;
  annotations: [];
  logprobs: ReturnType<typeof chatLogprobs>["content"];
}

export interface MessageItem {
  id: string;
  type: "message";
  status: "in_progress" | "completed" | "incomplete";
  role: "assistant";
  content: OutputText[];
}

export interface FunctionCallItem {
  id: string;
  type: "function_call";
  status: "in_progress" | "completed" | "incomplete";
  call_id: string;
  name: string;
  arguments: string;
}

/** A `reasoning_text` part: a reasoning model's thought text. */
export interface ReasoningText {
  type: "reasoning_text";
  text: string;
}

/**
 * A reasoning model's thoughts, before the message or calls: the thought text whole in
 * `content` (one `reasoning_text` part), and no summary (Corral writes none).
 */
export interface ReasoningItem {
  id: string;
  type: "reasoning";
  status: "in_progress" | "completed" | "incomplete";
  summary: [];
  content: ReasoningText[];
}

export type OutputItem = ReasoningItem | MessageItem | FunctionCallItem;

export interface ResponsesUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export const responsesUsage = (usage: Usage): ResponsesUsage => ({
  input_tokens: usage.prompt_tokens,
  input_tokens_details: { cached_tokens: 0 },
  output_tokens: usage.completion_tokens,
  output_tokens_details: { reasoning_tokens: usage.reasoning_tokens ?? 0 },
  total_tokens: usage.prompt_tokens + usage.completion_tokens,
});

/** An `output_text` part; `logprobs` is empty unless `include` asked for them. */
export const outputText = (text: string, logprobs: readonly TokenLogprob[] | null): OutputText => ({
  type: "output_text",
  text,
  annotations: [],
  logprobs: logprobs ? chatLogprobs(logprobs).content : [],
});

export const messageItem = (id: string, status: MessageItem["status"], content: OutputText[]): MessageItem => ({
  id,
  type: "message",
  status,
  role: "assistant",
  content,
});

export const reasoningItem = (id: string, status: ReasoningItem["status"], text: string): ReasoningItem => ({
  id,
  type: "reasoning",
  status,
  summary: [],
  content: [{ type: "reasoning_text", text }],
});

export const functionCallItem = (
  id: string,
  status: FunctionCallItem["status"],
  callId: string,
  name: string,
  args: string,
): FunctionCallItem => ({ id, type: "function_call", status, call_id: callId, name, arguments: args });

/** What a finished job produced, as output items. */
export interface ResponseOutcome {
  status: "completed" | "incomplete";
  output: OutputItem[];
}

/**
 * A finished job's output: its function calls when the reply made calls (the job's
 * `result.tool_calls`, after a message with the text a native call followed, if any),
 * otherwise one message. A reply cut by
 * `max_output_tokens` is `incomplete`, as its message is. On a reasoning model, a reasoning
 * item with the thoughts comes first (none when it did not think: `reasoning` empty); a
 * reply cut before its answer began has only that item, incomplete, as on OpenAI.
 */
export function responseOutcome(
  text: string,
  finishReason: "stop" | "length" | "cancelled",
  calls: readonly JobToolCall[] | null | undefined,
  logprobs: readonly TokenLogprob[] | null,
  reasoning?: string,
): ResponseOutcome {
  const cut = finishReason === "length";
  const cutInThought = cut && text === "";
  const thought = reasoning
    ? [reasoningItem(responsesId("rs"), cutInThought ? "incomplete" : "completed", reasoning)]
    : [];
  if (thought.length > 0 && cutInThought) return { status: "incomplete", output: thought };
  if (calls?.length) {
    const before = text.trim() === "" ? [] : [messageItem(responsesId("msg"), "completed", [outputText(text, null)])];
    return {
      status: "completed",
      output: [
        ...thought,
        ...before,
        ...calls.map((call) => functionCallItem(responsesId("fc"), "completed", call.id, call.name, call.arguments)),
      ],
    };
  }
  const status = cut ? "incomplete" : "completed";
  return { status, output: [...thought, messageItem(responsesId("msg"), status, [outputText(text, logprobs)])] };
}

/** The response object: the request's settings, and its state so far. */
export function responseObject(
  head: ResponseHead,
  settings: ResponseSettings,
  state: {
    status: ResponseStatus;
    output: readonly OutputItem[];
    usage: Usage | null;
    error?: { code: string; message: string };
  },
) {
  return {
    id: head.id,
    object: "response" as const,
    created_at: head.created_at,
    status: state.status,
    background: false,
    error: state.error ?? null,
    incomplete_details: state.status === "incomplete" ? { reason: "max_output_tokens" as const } : null,
    instructions: settings.instructions,
    max_output_tokens: settings.max_output_tokens,
    max_tool_calls: settings.max_tool_calls,
    model: head.model,
    output: state.output,
    parallel_tool_calls: settings.parallel_tool_calls,
    previous_response_id: null,
    reasoning: settings.reasoning,
    store: false,
    temperature: settings.temperature,
    text: { format: settings.text.format, verbosity: "medium" as const },
    tool_choice: settings.tool_choice,
    tools: settings.tools,
    top_logprobs: settings.top_logprobs,
    top_p: settings.top_p,
    truncation: "disabled" as const,
    usage: state.usage ? responsesUsage(state.usage) : null,
    user: settings.user,
    metadata: settings.metadata,
  };
}

export type ResponseObject = ReturnType<typeof responseObject>;
