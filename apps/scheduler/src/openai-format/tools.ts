import { randomBytes } from "node:crypto";
import { z } from "zod";
import {
  InvalidRequestError,
  UnsupportedSchemaError,
  ValidationError,
  planJsonSchemaGrammar,
  type ChatMessage,
  type ResponseFormat,
} from "@corral/shared";

/**
 * Tool calling, template-agnostic: the tools are described to the model in a system
 * message, and a call is a JSON object `{"tool_calls": [{"name", "arguments"}]}`. With
 * `tool_choice` `required` or a named function, a JSON Schema grammar built from the tools'
 * `parameters` makes the output exactly such an object, so every call is valid JSON for
 * its function's parameters, even from a tiny model. With `auto`, the model is free: an
 * output that is such an object (of known tools) is a call, anything else is content.
 */

/** Most tools one request may list. */
export const MAX_TOOLS = 64;
/** Most calls one reply may make when `parallel_tool_calls` is not false. */
export const MAX_PARALLEL_CALLS = 8;

const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

const Tool = z.object({
  type: z.literal("function"),
  function: z.object({
    name: z.string().regex(FUNCTION_NAME, { error: "a function name is 1–64 of a-z, A-Z, 0-9, _ and -" }),
    description: z.string().max(4096).nullish(),
    parameters: z.record(z.string(), z.unknown()).nullish(),
    strict: z.boolean().nullish(),
  }),
});

export const ToolsField = z.array(Tool).max(MAX_TOOLS);

export const ToolChoiceField = z.union([
  z.enum(["none", "auto", "required"]),
  z.object({ type: z.literal("function"), function: z.object({ name: z.string() }) }),
]);

const ToolCallField = z.object({
  id: z.string().min(1).max(128),
  type: z.literal("function"),
  function: z.object({ name: z.string(), arguments: z.string() }),
});
export const ToolCallsField = z.array(ToolCallField);

export interface ToolFunction {
  name: string;
  description?: string;
  /** The JSON Schema of its arguments (an empty object schema when none was given). */
  parameters: Record<string, unknown>;
}

/** How a request uses its tools. */
export interface ToolPlan {
  functions: ToolFunction[];
  /** `required` and named: the grammar forces a call (of `only`, when named). */
  mode: "auto" | "required";
  /** A named `tool_choice`. */
  only?: string;
  /** Most calls per reply (1 when `parallel_tool_calls` is false or `tool_choice` names a function). */
  maxCalls: number;
}

/** An assistant tool call in OpenAI's shape. */
export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

const NO_PARAMETERS = { type: "object", properties: {}, additionalProperties: false };

/**
 * The request's tool plan, or null when it uses no tools (none listed, or `tool_choice: "none"`).
 * @throws InvalidRequestError naming the field (`tools.<i>…`, `tool_choice`)
 */
export function parseTools(
  tools: unknown,
  toolChoice: unknown,
  parallel: boolean | null | undefined,
  responseFormat: ResponseFormat | null | undefined,
): ToolPlan | null {
  if (tools == null) {
    if (toolChoice != null && toolChoice !== "none" && toolChoice !== "auto") {
      throw new InvalidRequestError("`tool_choice` needs `tools`.", "tool_choice");
    }
    return null;
  }
  const parsedTools = ToolsField.safeParse(tools);
  if (!parsedTools.success) throw ValidationError.fromZod(parsedTools.error, "tools.");
  const choice = ToolChoiceField.safeParse(toolChoice ?? "auto");
  if (!choice.success) throw ValidationError.fromZod(choice.error, "tool_choice.");
  if (parsedTools.data.length === 0 || choice.data === "none") return null;
  const functions: ToolFunction[] = [];
  const seen = new Set<string>();
  for (const [i, tool] of parsedTools.data.entries()) {
    const { name, description, parameters } = tool.function;
    if (seen.has(name)) throw new InvalidRequestError(`Two tools are named \`${name}\`.`, `tools.${i}.function.name`);
    seen.add(name);
    const schema = parameters ?? NO_PARAMETERS;
    try {
      planJsonSchemaGrammar(schema);
    } catch (error) {
      if (!(error instanceof UnsupportedSchemaError)) throw error;
      const param = `tools.${i}.function.parameters`;
      throw new InvalidRequestError(
        error.message.replace("response_format.json_schema.schema", param),
        param,
        "unsupported_schema",
      );
    }
    functions.push({ name, ...(description ? { description } : {}), parameters: schema });
  }
  const parallelCalls = parallel === false ? 1 : MAX_PARALLEL_CALLS;
  if (choice.data === "auto") return { functions, mode: "auto", maxCalls: parallelCalls };
  if (responseFormat != null && responseFormat.type !== "text") {
    throw new InvalidRequestError(
      "`response_format` cannot be combined with a `tool_choice` that forces a call.",
      "response_format",
    );
  }
  const only = choice.data === "required" ? undefined : choice.data.function.name;
  if (only !== undefined && !seen.has(only)) {
    throw new InvalidRequestError(`\`tool_choice\` names \`${only}\`, which is not in \`tools\`.`, "tool_choice");
  }
  // A named function is called exactly once, as on OpenAI (LangChain's withStructuredOutput relies on it).
  const maxCalls = only !== undefined ? 1 : parallelCalls;
  const plan: ToolPlan = { functions, mode: "required", ...(only !== undefined ? { only } : {}), maxCalls };
  // The call grammar joins every tool's parameters: over the schema size limits, it is the tools that are too big.
  try {
    planJsonSchemaGrammar(toolCallSchema(plan));
  } catch (error) {
    if (!(error instanceof UnsupportedSchemaError)) throw error;
    throw new InvalidRequestError(
      error.message.replace("response_format.json_schema.schema", "the call grammar of `tools`"),
      "tools",
      "unsupported_schema",
    );
  }
  return plan;
}

/** The system message that tells the model its tools and how to call them. */
export function toolsSystemMessage(plan: ToolPlan): ChatMessage {
  const list = plan.functions
    .filter((f) => plan.only === undefined || f.name === plan.only)
    .map((f) => JSON.stringify({ name: f.name, description: f.description ?? "", parameters: f.parameters }))
    .join("\n");
  const how =
    plan.mode === "required"
      ? "Answer with a call to one of them"
      : "To call one or more of them, answer only with JSON; otherwise answer normally";
  return {
    role: "system",
    content: `You can call these functions:\n${list}\n${how}, as {"tool_calls": [{"name": <function name>, "arguments": <arguments object>}]}.`,
  };
}

/** The JSON Schema a forced call's output follows: one to `maxCalls` calls of the allowed functions. */
export function toolCallSchema(plan: ToolPlan): Record<string, unknown> {
  const branches = plan.functions
    .filter((f) => plan.only === undefined || f.name === plan.only)
    .map((f) => ({
      type: "object",
      properties: { name: { const: f.name }, arguments: f.parameters },
      required: ["name", "arguments"],
      additionalProperties: false,
    }));
  const item = branches.length === 1 ? branches[0]! : { anyOf: branches };
  return {
    type: "object",
    properties: { tool_calls: { type: "array", items: item, minItems: 1, maxItems: plan.maxCalls } },
    required: ["tool_calls"],
    additionalProperties: false,
  };
}

/** The response format of a plan's jobs: the call grammar when a call is forced. */
export function toolResponseFormat(plan: ToolPlan): ResponseFormat | undefined {
  if (plan.mode !== "required") return undefined;
  return { type: "json_schema", json_schema: { name: "tool_calls", schema: toolCallSchema(plan), strict: true } };
}

const CallOutput = z.object({
  tool_calls: z.array(z.object({ name: z.string(), arguments: z.unknown() })).min(1),
});

/**
 * The calls in a job's text, or null when it is content: the text must be exactly a
 * `{"tool_calls": […]}` object naming only known functions (at most `maxCalls`).
 */
export function parseToolCalls(text: string, plan: ToolPlan): ToolCall[] | null {
  const trimmed = text.trim();
  if (!trimmed.startsWith("{")) return null;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return null;
  }
  const parsed = CallOutput.safeParse(value);
  if (!parsed.success || parsed.data.tool_calls.length > plan.maxCalls) return null;
  const names = new Set(plan.functions.map((f) => f.name));
  if (!parsed.data.tool_calls.every((call) => names.has(call.name))) return null;
  return parsed.data.tool_calls.map((call) => ({
    id: toolCallId(),
    type: "function",
    function: { name: call.name, arguments: JSON.stringify(call.arguments ?? {}) },
  }));
}

/** `call_…`: 16 random URL-safe characters. */
export const toolCallId = (): string => `call_${randomBytes(12).toString("base64url")}`;

/** An assistant message's tool calls as the model is asked to write them. */
export function toolCallsText(calls: readonly ToolCall[], at: string): string {
  return JSON.stringify({
    tool_calls: calls.map((call, j) => {
      let args: unknown;
      try {
        args = JSON.parse(call.function.arguments);
      } catch {
        throw new InvalidRequestError(
          `Invalid value for \`${at}.tool_calls.${j}.function.arguments\`: expected a JSON string.`,
          `${at}.tool_calls.${j}.function.arguments`,
        );
      }
      return { name: call.function.name, arguments: args };
    }),
  });
}

/** A `tool` message as the model sees it: a user turn carrying the result. */
export const toolResultText = (content: string, toolCallId: string, name: string | undefined): string =>
  `Result of tool call ${toolCallId}${name ? ` (${name})` : ""}:\n${content}`;
