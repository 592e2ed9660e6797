import { z } from "zod";
import {
  CorralError,
  InvalidRequestError,
  MAX_REASONING_BUDGET,
  MAX_TOKENS_LIMIT,
  MAX_TOP_LOGPROBS,
  ReasoningEffort,
  ValidationError,
  reasoningBudget,
  validateJsonSchemaForGrammar,
  type JobChatMessage,
  type ResponseFormat,
} from "@corral/shared";
import { UnsupportedFeatureError } from "./errors.js";
import { OPENAI_DEFAULT_TEMPERATURE, type ChatRequest } from "./schemas.js";
import { inputMessages } from "./responses-input.js";
import { parseTools } from "./tools.js";

/**
 * The body of `POST /v1/responses`, stateless: nothing is stored, so `store: true`,
 * `previous_response_id`, `conversation` and `item_reference` inputs are 400s. The
 * request becomes a chat request (one choice) and runs as a chat job; what the response
 * object echoes back (instructions, tools, sampling, metadata) is kept beside it.
 * Unknown fields are ignored, as on the chat route; known fields Corral cannot honour are
 * a 400 naming them.
 */

/** What `include` may ask for. */
const LOGPROBS_INCLUDE = "message.output_text.logprobs";
/**
 * Accepted and ignored: Corral's reasoning items carry their thoughts in plain text
 * (`content`), and reasoning items sent back as input are left out of the prompt.
 */
const ENCRYPTED_REASONING_INCLUDE = "reasoning.encrypted_content";

/** OpenAI's limits on `metadata`, which Corral keeps in the job's metadata. */
const Metadata = z
  .record(z.string().max(64), z.string().max(512))
  .refine((m) => Object.keys(m).length <= 16, { error: "at most 16 pairs" });

const FunctionTool = z.looseObject({
  type: z.string(),
  name: z.string().optional(),
  description: z.string().nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
});

const TextFormat = z.discriminatedUnion("type", [
  z.object({ type: z.literal("text") }),
  z.object({ type: z.literal("json_object") }),
  z.object({
    type: z.literal("json_schema"),
    name: z.string().min(1).max(64),
    schema: z.record(z.string(), z.unknown()),
    strict: z.boolean().nullish(),
    description: z.string().nullish(),
  }),
]);
export type TextFormat = z.infer<typeof TextFormat>;

/** `reasoning.summary`: accepted, but no summary is written (see {@link rejectUnsupported}). */
const ReasoningSummary = z.enum(["auto", "concise", "detailed"]);

const ResponsesBody = z.object({
  model: z.string().min(1).max(256),
  input: z.union([z.string(), z.array(z.unknown()).min(1).max(1024)], {
    error: "expected a string or a non-empty array of input items",
  }),
  instructions: z.string().nullish(),
  max_output_tokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  top_logprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).nullish(),
  include: z.array(z.string()).nullish(),
  text: z.object({ format: TextFormat.nullish(), verbosity: z.string().nullish() }).nullish(),
  tools: z.array(FunctionTool).nullish(),
  tool_choice: z.unknown().optional(),
  parallel_tool_calls: z.boolean().nullish(),
  max_tool_calls: z.number().int().min(1).nullish(),
  metadata: Metadata.nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_obfuscation: z.boolean().nullish() }).nullish(),
  user: z.string().max(512).nullish(),
  // Stateful or otherwise unsupported: each is a 400 when set (see rejectUnsupported).
  store: z.boolean().nullish(),
  previous_response_id: z.string().nullish(),
  conversation: z.unknown().optional(),
  background: z.boolean().nullish(),
  prompt: z.unknown().optional(),
  reasoning: z
    .object({
      effort: ReasoningEffort.nullish(),
      summary: ReasoningSummary.nullish(),
      generate_summary: ReasoningSummary.nullish(),
      context: z.enum(["auto", "current_turn", "all_turns"]).nullish(),
      mode: z.string().nullish(),
    })
    .nullish(),
  /** Extension, as on chat: the thought-token budget of a reasoning model, in place of `reasoning.effort`'s. */
  max_reasoning_tokens: z.number().int().min(0).max(MAX_REASONING_BUDGET).nullish(),
  truncation: z.enum(["auto", "disabled"]).nullish(),
});
type ResponsesBody = z.infer<typeof ResponsesBody>;

/** A function tool in the Responses shape, as the response object echoes it. */
export interface ResponsesFunctionTool {
  type: "function";
  name: string;
  description: string | null;
  parameters: Record<string, unknown> | null;
  strict: boolean;
}

export type ResponsesToolChoice = "none" | "auto" | "required" | { type: "function"; name: string };

/** The request fields a response object repeats. */
export interface ResponseSettings {
  instructions: string | null;
  max_output_tokens: number | null;
  temperature: number;
  top_p: number;
  top_logprobs: number;
  tools: ResponsesFunctionTool[];
  tool_choice: ResponsesToolChoice;
  parallel_tool_calls: boolean;
  max_tool_calls: number | null;
  metadata: Record<string, string>;
  text: { format: TextFormat };
  user: string | null;
  /** `reasoning` as asked (effort null when unset); no summary is ever written. */
  reasoning: { effort: ReasoningEffort | null; summary: z.infer<typeof ReasoningSummary> | null };
}

export interface ResponsesRequest {
  /** The same request as a chat completion with one choice. */
  chat: ChatRequest;
  settings: ResponseSettings;
  /** `include` asked for the output text's logprobs. */
  logprobs: boolean;
}

/** `POST /v1/responses`. @throws InvalidRequestError (400) naming the field. */
export function parseResponsesRequest(body: unknown): ResponsesRequest {
  const parsed = ResponsesBody.safeParse(body);
  if (!parsed.success) throw ValidationError.fromZod(parsed.error);
  const b = parsed.data;
  rejectUnsupported(b);
  const format: TextFormat = b.text?.format ?? { type: "text" };
  const responseFormat = toResponseFormat(format);
  const { tools, choice, plan } = parseResponsesTools(b, responseFormat);
  const logprobs = parseInclude(b.include);
  const budget = reasoningBudget({
    reasoning_effort: b.reasoning?.effort,
    max_reasoning_tokens: b.max_reasoning_tokens,
  });

  const messages: JobChatMessage[] = [];
  if (b.instructions) messages.push({ role: "system", content: b.instructions });
  messages.push(
    ...(typeof b.input === "string" ? [{ role: "user" as const, content: b.input }] : inputMessages(b.input)),
  );
  const temperature = b.temperature ?? OPENAI_DEFAULT_TEMPERATURE;
  const chat: ChatRequest = {
    model: b.model,
    n: 1,
    stream: b.stream ?? false,
    includeUsage: false,
    sampling: {
      temperature,
      ...(b.top_p != null ? { top_p: b.top_p } : {}),
      ...(b.max_output_tokens != null ? { max_tokens: b.max_output_tokens } : {}),
      ...(responseFormat ? { response_format: responseFormat } : {}),
      ...(logprobs ? { logprobs: b.top_logprobs ?? 0 } : {}),
      ...(budget !== undefined ? { reasoning_budget: budget } : {}),
    },
    messages,
    tools: plan,
    ...(b.user != null ? { user: b.user } : {}),
  };
  return {
    chat,
    logprobs,
    settings: {
      instructions: b.instructions ?? null,
      max_output_tokens: b.max_output_tokens ?? null,
      temperature,
      top_p: b.top_p ?? 1,
      top_logprobs: b.top_logprobs ?? 0,
      tools,
      tool_choice: choice,
      parallel_tool_calls: b.parallel_tool_calls ?? true,
      max_tool_calls: b.max_tool_calls ?? null,
      metadata: b.metadata ?? {},
      text: { format },
      user: b.user ?? null,
      reasoning: {
        effort: b.reasoning?.effort ?? null,
        summary: b.reasoning?.summary ?? b.reasoning?.generate_summary ?? null,
      },
    },
  };
}

function rejectUnsupported(b: ResponsesBody): void {
  const stateless = "Corral's /v1/responses is stateless: responses are not stored";
  if (b.store === true) {
    unsupported("store", `${stateless}; \`store\` must be false or left out.`, "unsupported_value");
  }
  if (b.previous_response_id != null) {
    unsupported(
      "previous_response_id",
      `${stateless}, so \`previous_response_id\` cannot be used; send the whole conversation in \`input\`.`,
    );
  }
  if (b.conversation != null) {
    unsupported("conversation", `${stateless}; send the whole conversation in \`input\`.`);
  }
  if (b.background === true) {
    unsupported("background", "Background responses are not supported (they need stored responses).");
  }
  if (b.prompt != null) unsupported("prompt", "Prompt templates (`prompt`) are not supported; send `input`.");
  // reasoning.summary is accepted: OpenAI does not promise a summary for every response,
  // and the whole thought is in the reasoning item's content.
  if (b.reasoning?.effort != null && b.max_reasoning_tokens != null) {
    throw new InvalidRequestError(
      "Give either `reasoning.effort` or `max_reasoning_tokens`, not both.",
      "max_reasoning_tokens",
    );
  }
  if (b.reasoning?.context === "all_turns") {
    unsupported(
      "reasoning.context",
      "Earlier turns' reasoning is not shown to the model (reasoning input items are left out of the prompt); `reasoning.context` may be `auto` or `current_turn`.",
      "unsupported_value",
    );
  }
  if (b.reasoning?.mode != null && b.reasoning.mode !== "standard") {
    unsupported("reasoning.mode", "Only `reasoning.mode: standard` is supported.", "unsupported_value");
  }
  if (b.truncation === "auto") {
    unsupported("truncation", "Only `truncation: disabled` is supported.", "unsupported_value");
  }
  if (b.text?.verbosity != null && b.text.verbosity !== "medium") {
    unsupported("text.verbosity", "Only `text.verbosity: medium` is supported.", "unsupported_value");
  }
  if (b.stream_options != null && b.stream !== true) {
    throw new InvalidRequestError("`stream_options` is only allowed when `stream` is true.", "stream_options");
  }
}

function parseInclude(include: readonly string[] | null | undefined): boolean {
  for (const [i, entry] of (include ?? []).entries()) {
    if (entry !== LOGPROBS_INCLUDE && entry !== ENCRYPTED_REASONING_INCLUDE) {
      unsupported(
        `include.${i}`,
        `Only \`${LOGPROBS_INCLUDE}\` and \`${ENCRYPTED_REASONING_INCLUDE}\` (ignored) can be included.`,
        "unsupported_value",
      );
    }
  }
  return include?.includes(LOGPROBS_INCLUDE) ?? false;
}

/** `text.format` as a job's response format; checked against what the grammar can enforce. */
function toResponseFormat(format: TextFormat): ResponseFormat | undefined {
  if (format.type === "text") return undefined;
  if (format.type === "json_object") return format;
  const problem = validateJsonSchemaForGrammar(format.schema);
  if (problem !== null) {
    throw new InvalidRequestError(
      problem.replace("response_format.json_schema.schema", "text.format.schema"),
      "text.format.schema",
      "unsupported_schema",
    );
  }
  return {
    type: "json_schema",
    json_schema: {
      name: format.name,
      schema: format.schema,
      ...(format.strict != null ? { strict: format.strict } : {}),
      ...(format.description != null ? { description: format.description } : {}),
    },
  };
}

const ToolChoice = z.union([
  z.enum(["none", "auto", "required"]),
  z.object({ type: z.literal("function"), name: z.string() }),
]);

/** The function tools and tool choice, checked by the chat route's {@link parseTools}; its params renamed to this shape. */
function parseResponsesTools(b: ResponsesBody, responseFormat: ResponseFormat | undefined) {
  const tools: ResponsesFunctionTool[] = (b.tools ?? []).map((tool, i) => {
    if (tool.type !== "function") {
      unsupported(
        `tools.${i}.type`,
        `Tools of type \`${tool.type}\` are not supported; only \`function\`.`,
        "unsupported_value",
      );
    }
    if (tool.name === undefined) throw new InvalidRequestError("A function tool needs `name`.", `tools.${i}.name`);
    return {
      type: "function",
      name: tool.name,
      description: tool.description ?? null,
      parameters: tool.parameters ?? null,
      strict: tool.strict ?? true,
    };
  });
  const parsedChoice = ToolChoice.safeParse(b.tool_choice ?? "auto");
  if (!parsedChoice.success) {
    unsupported(
      "tool_choice",
      "`tool_choice` must be `none`, `auto`, `required` or `{type: function, name}`.",
      "unsupported_value",
    );
  }
  const choice: ResponsesToolChoice = parsedChoice.data;
  const chatTools = tools.map((t) => ({
    type: "function",
    function: {
      name: t.name,
      ...(t.description != null ? { description: t.description } : {}),
      ...(t.parameters != null ? { parameters: t.parameters } : {}),
    },
  }));
  const chatChoice = typeof choice === "string" ? choice : { type: "function", function: { name: choice.name } };
  try {
    const plan = parseTools(b.tools == null ? null : chatTools, chatChoice, b.parallel_tool_calls, responseFormat);
    if (plan && b.max_tool_calls != null) plan.max_calls = Math.min(plan.max_calls, b.max_tool_calls);
    return { tools, choice, plan };
  } catch (error) {
    if (!(error instanceof CorralError) || error.param === null) throw error;
    const param = error.param
      .replace(/^tools\.(\d+)\.function\./, "tools.$1.")
      .replace(/^tool_choice\.function\./, "tool_choice.")
      .replace(/^response_format$/, "text.format");
    throw new InvalidRequestError(error.message.replaceAll("response_format", "text.format"), param, error.code);
  }
}

function unsupported(
  param: string,
  message: string,
  code: "unsupported_parameter" | "unsupported_value" = "unsupported_parameter",
): never {
  throw new UnsupportedFeatureError(message, param, code);
}
