import { randomBytes } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { planJsonSchemaGrammar, type JobToolCall, type JobTools, type ResponseFormat } from "@corral/shared";
import {
  ChatWrapper,
  JinjaTemplateChatWrapper,
  LlamaText,
  type ChatModelFunctions,
  type ChatWrapperGenerateContextStateOptions,
  type ChatWrapperGeneratedContextState,
  type GbnfJsonSchema,
  type LlamaModel,
} from "node-llama-cpp";

/**
 * Tool calling, two ways.
 *
 * - **In the chat template's own syntax** ("native"), for models whose template has one
 *   (Qwen 2.5's `<tool_call>`, Llama 3.1's, Mistral's, Functionary's, DeepSeek's…): the
 *   tools go to node-llama-cpp's LlamaChat as functions, which documents them the
 *   template's way, detects a call in the template's syntax and constrains its arguments
 *   with a grammar of their JSON Schema; calls and results in the history are rendered by
 *   the template. A forced call (`required`, named) enters node-llama-cpp's function-call
 *   mode at once ({@link forcingChatWrapper}).
 * - **Template-agnostic** ("text") for the others: the tools are described in a system
 *   message, a call is a JSON object `{"tool_calls": [{"name", "arguments"}]}`, and a
 *   forced call is made by a JSON Schema grammar of that object ({@link toolCallSchema}).
 *   With `auto`, an output that is exactly such an object (of known tools) is a call.
 */

/** Whether a model's chat template has its own function-call syntax that node-llama-cpp speaks. */
export function hasNativeToolSyntax(model: LlamaModel, wrapper: ChatWrapper): boolean {
  const template = model.fileInfo.metadata?.tokenizer?.chat_template;
  if (typeof template !== "string" || !template.includes("tool")) return false;
  if (wrapper instanceof JinjaTemplateChatWrapper) return wrapper.usingJinjaFunctionCallTemplate;
  // node-llama-cpp's own wrappers for templates with tools (Llama 3.1, Qwen, Mistral…) set their syntax;
  // the others keep the generic `||call:` one, which is not the model's.
  return !isDeepStrictEqual(wrapper.settings.functions, ChatWrapper.defaultSettings.functions);
}

/**
 * The tools as node-llama-cpp functions (each one's parameters normalized for its grammar
 * generator), or null when a schema needs Corral's own grammar rules (`pattern`, `email` or
 * `uuid` formats, numeric bounds), which node-llama-cpp's function grammar cannot splice in:
 * such tools take the template-agnostic path.
 */
export function chatFunctions(tools: JobTools): ChatModelFunctions | null {
  const functions: Record<string, { description?: string; params: GbnfJsonSchema }> = {};
  for (const f of allowedFunctions(tools)) {
    const plan = planJsonSchemaGrammar(f.parameters);
    if (plan.slots.length > 0) return null;
    functions[f.name] = {
      ...(f.description ? { description: f.description } : {}),
      params: plan.schema as GbnfJsonSchema,
    };
  }
  return functions;
}

/**
 * A copy of `wrapper` that makes the model call a function at once: after the prompt,
 * node-llama-cpp writes the template's call prefix and the model must pick a function (and
 * then its arguments, under their grammar). Later calls and the end are the model's.
 */
export function forcingChatWrapper(wrapper: ChatWrapper): ChatWrapper {
  const prefix = LlamaText(wrapper.settings.functions.call.prefix);
  const generateContextState = (options: ChatWrapperGenerateContextStateOptions): ChatWrapperGeneratedContextState => {
    const state = wrapper.generateContextState(options);
    return {
      contextText: state.contextText,
      stopGenerationTriggers: state.stopGenerationTriggers,
      noPrefixTrigger: { type: "functionCall", inject: prefix },
    };
  };
  // Everything else is the wrapper's own, called on it (its methods may use private fields).
  return new Proxy(wrapper, {
    get(target, key) {
      if (key === "generateContextState") return generateContextState;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * Tokens node-llama-cpp writes into the context itself around `maxCalls` calls in the
 * template's syntax (each call's prefix, the text between its name and arguments, its
 * suffix, what goes between calls, and the calls section's own prefix and suffix): they
 * are not generated, so `max_tokens` does not cover them, but they take context room. A
 * job leaves this much room free besides its prompt and `max_tokens`, else LlamaChat would
 * run out of context mid-call (and fail trying to shift it).
 */
export function functionCallOverheadTokens(wrapper: ChatWrapper, model: LlamaModel, maxCalls: number): number {
  const { call, parallelism } = wrapper.settings.functions;
  const count = (text: LlamaText): number => text.tokenize(model.tokenizer).length;
  const perCall = count(LlamaText([call.prefix, call.paramsPrefix, call.suffix, parallelism?.call.betweenCalls ?? ""]));
  const section = count(LlamaText([parallelism?.call.sectionPrefix ?? "", parallelism?.call.sectionSuffix ?? ""]));
  return perCall * maxCalls + section;
}

/** The functions a reply may call: all, or the named `tool_choice`'s. */
const allowedFunctions = (tools: JobTools) =>
  tools.functions.filter((f) => tools.only === undefined || f.name === tools.only);

/** A new call id in OpenAI's style. */
export const newToolCallId = (): string => `call_${randomBytes(12).toString("base64url")}`;

/** The template-agnostic system message that tells the model its tools and how to call them. */
export function toolsSystemText(tools: JobTools): string {
  const list = allowedFunctions(tools)
    .map((f) => JSON.stringify({ name: f.name, description: f.description ?? "", parameters: f.parameters }))
    .join("\n");
  const how = tools.required
    ? "Answer with a call to one of them"
    : "To call one or more of them, answer only with JSON; otherwise answer normally";
  return `You can call these functions:\n${list}\n${how}, as {"tool_calls": [{"name": <function name>, "arguments": <arguments object>}]}.`;
}

/** The JSON Schema a forced template-agnostic call follows: one to `max_calls` calls of the allowed functions. */
export function toolCallSchema(tools: JobTools): Record<string, unknown> {
  const branches = allowedFunctions(tools).map((f) => ({
    type: "object",
    properties: { name: { const: f.name }, arguments: f.parameters },
    required: ["name", "arguments"],
    additionalProperties: false,
  }));
  const item = branches.length === 1 ? branches[0]! : { anyOf: branches };
  return {
    type: "object",
    properties: { tool_calls: { type: "array", items: item, minItems: 1, maxItems: tools.max_calls } },
    required: ["tool_calls"],
    additionalProperties: false,
  };
}

/** The response format of a template-agnostic forced call. */
export const toolCallResponseFormat = (tools: JobTools): ResponseFormat => ({
  type: "json_schema",
  json_schema: { name: "tool_calls", schema: toolCallSchema(tools), strict: true },
});

/**
 * The calls in a template-agnostic reply, or null when it is content: the text must be
 * exactly a `{"tool_calls": […]}` object naming only known functions (at most `max_calls`).
 */
export function parseToolCallsText(text: string, tools: JobTools): JobToolCall[] | null {
  const trimmed = text.trim();
  if (!trimmed.startsWith("{")) return null;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null || !("tool_calls" in value)) return null;
  const calls = value.tool_calls;
  if (!Array.isArray(calls) || calls.length === 0 || calls.length > tools.max_calls) return null;
  const names = new Set(allowedFunctions(tools).map((f) => f.name));
  const parsed: JobToolCall[] = [];
  for (const call of calls as unknown[]) {
    if (typeof call !== "object" || call === null) return null;
    const { name, arguments: args } = call as { name?: unknown; arguments?: unknown };
    if (typeof name !== "string" || !names.has(name)) return null;
    parsed.push({ id: newToolCallId(), name, arguments: JSON.stringify(args ?? {}) });
  }
  return parsed;
}

/** An assistant message's calls as the template-agnostic path asks the model to write them. */
export const toolCallsText = (calls: readonly JobToolCall[]): string =>
  JSON.stringify({ tool_calls: calls.map((call) => ({ name: call.name, arguments: parseArguments(call.arguments) })) });

/** A `tool` message as the template-agnostic path shows it: a user turn carrying the result. */
export const toolResultText = (content: string, toolCallId: string, name: string | undefined): string =>
  `Result of tool call ${toolCallId}${name ? ` (${name})` : ""}:\n${content}`;

/** A call's arguments (a JSON string) as a value; text that is not JSON stays a string. */
export function parseArguments(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
