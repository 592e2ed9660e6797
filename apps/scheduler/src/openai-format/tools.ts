import { z } from "zod";
import { toolCallSchema } from "@corral/llama";
import {
  InvalidRequestError,
  UnsupportedSchemaError,
  ValidationError,
  planJsonSchemaGrammar,
  type JobToolCall,
  type JobToolFunction,
  type JobTools,
  type ResponseFormat,
} from "@corral/shared";

/**
 * OpenAI `tools` and `tool_choice` checked and turned into a chat job's `tools`. How the
 * model sees and calls them is the worker's (see @corral/llama's tool-calls.ts): in its
 * chat template's own syntax where the template has one, else template-agnostic. Either
 * way a `required` or named choice always yields a call whose arguments are valid JSON for
 * its function's `parameters`, so each tool's schema, and the template-agnostic call
 * grammar of them all, must be one a grammar can enforce: that is checked here, before
 * anything is queued.
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
): JobTools | null {
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
  const functions: JobToolFunction[] = [];
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
  if (choice.data === "auto") return { functions, required: false, max_calls: parallelCalls };
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
  const plan: JobTools = { functions, required: true, ...(only !== undefined ? { only } : {}), max_calls: maxCalls };
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

/** A job's tool calls in OpenAI's shape. */
export const openAIToolCalls = (calls: readonly JobToolCall[]): ToolCall[] =>
  calls.map((call) => ({ id: call.id, type: "function", function: { name: call.name, arguments: call.arguments } }));

/**
 * An assistant message's `tool_calls` as a chat job carries them.
 * @throws InvalidRequestError naming a call whose `arguments` is not JSON
 */
export function jobToolCalls(calls: readonly z.infer<typeof ToolCallField>[], at: string): JobToolCall[] {
  return calls.map((call, j) => {
    try {
      JSON.parse(call.function.arguments);
    } catch {
      throw new InvalidRequestError(
        `Invalid value for \`${at}.tool_calls.${j}.function.arguments\`: expected a JSON string.`,
        `${at}.tool_calls.${j}.function.arguments`,
      );
    }
    return { id: call.id, name: call.function.name, arguments: call.function.arguments };
  });
}
