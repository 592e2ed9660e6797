import type { JobChatMessage, JobTools } from "@corral/shared";
import {
  DeepSeekChatWrapper,
  GeneralChatWrapper,
  resolveChatWrapper,
  type ChatHistoryItem,
  type ChatModelFunctionCall,
  type ChatModelResponse,
  type ChatWrapper,
  type LlamaModel,
} from "node-llama-cpp";
import { parseArguments, toolCallsText, toolResultText, toolsSystemText } from "./tool-calls.js";

/** The GGUF's own chat template when it has one, else a plain "role: text" format. */
export function chatWrapperFor(model: LlamaModel): ChatWrapper {
  const template = model.fileInfo.metadata?.tokenizer?.chat_template;
  if (typeof template === "string" && template.trim() !== "") {
    return resolveChatWrapper(model, { warningLogs: false });
  }
  return new GeneralChatWrapper();
}

/**
 * Whether a chat template has thought segments (DeepSeek R1's `<think>…</think>`, and the
 * like): node-llama-cpp then reports the model's thoughts apart from its answer.
 */
export function hasThoughtSegments(wrapper: ChatWrapper): boolean {
  return wrapper.settings.segments?.thought !== undefined;
}

/**
 * The chat template a DeepSeek R1-style model thinks with: node-llama-cpp's DeepSeek
 * template with the thought opened at the start of every response, as R1's own chat
 * template does (its generation prompt ends with `<｜Assistant｜><think>\n`, and DeepSeek
 * recommends forcing it, since R1 otherwise tends to skip thinking); node-llama-cpp's
 * template leaves it to the model. The thought budget only holds for a thought opened
 * while generating, which this one is. Null for any other model (its template, as
 * resolved, decides): a DeepSeek template without `<think>` (DeepSeek V3) does not reason.
 */
export function thinkingChatWrapper(model: LlamaModel, wrapper: ChatWrapper): ChatWrapper | null {
  const template = model.fileInfo.metadata?.tokenizer?.chat_template;
  const thought = wrapper.settings.segments?.thought;
  if (!(wrapper instanceof DeepSeekChatWrapper) || thought === undefined) return null;
  if (typeof template !== "string" || !template.includes("<think>")) return null;
  // A copy of the resolved wrapper (its options kept) whose settings open the thought on start.
  const settings = {
    ...wrapper.settings,
    segments: { ...wrapper.settings.segments, thought: { ...thought, openOnResponseStart: true } },
  };
  return Object.assign(Object.create(Object.getPrototypeOf(wrapper) as object) as ChatWrapper, wrapper, { settings });
}

/**
 * A chat job's messages → node-llama-cpp chat history, ending with the model turn to
 * generate. `tools` says how tool calls and results are rendered:
 * - `native` (the template's own syntax): an assistant message's calls become function
 *   calls in its model turn, and each `tool` message becomes the result of the call it
 *   answers (a result that is JSON goes in as that value, other text as a string); a reply
 *   after the results continues that same model turn, as node-llama-cpp's history has it.
 * - `text` (template-agnostic): the tools' system message first (when the job has tools),
 *   calls as a `{"tool_calls": […]}` JSON text after the message's content, and results as
 *   user turns naming their call (see tool-calls.ts).
 */
export function toChatHistory(
  messages: readonly JobChatMessage[],
  tools: { rendering: "native" | "text"; tools?: JobTools } = { rendering: "text" },
): ChatHistoryItem[] {
  const native = tools.rendering === "native";
  const history: ChatHistoryItem[] =
    !native && tools.tools ? [{ type: "system", text: toolsSystemText(tools.tools) }] : [];
  /** The calls of the latest model turn, by id, awaiting their results (native). */
  const open = new Map<string, ChatModelFunctionCall>();
  for (const message of messages) {
    const last = history.at(-1);
    switch (message.role) {
      case "system":
        history.push({ type: "system", text: message.content });
        break;
      case "user":
        history.push({ type: "user", text: message.content });
        break;
      case "assistant": {
        const calls = message.tool_calls ?? [];
        if (!native) {
          const text =
            calls.length === 0
              ? message.content
              : `${message.content ? `${message.content}\n` : ""}${toolCallsText(calls)}`;
          history.push({ type: "model", response: [text] });
          break;
        }
        // After results, the reply goes on in the same model turn.
        const turn: ChatModelResponse =
          last?.type === "model" && open.size > 0 ? last : { type: "model", response: [] };
        if (turn !== last) history.push(turn);
        open.clear();
        if (message.content !== "") turn.response.push(message.content);
        for (const call of calls) {
          const item: ChatModelFunctionCall = {
            type: "functionCall",
            name: call.name,
            params: parseArguments(call.arguments),
            result: null,
          };
          turn.response.push(item);
          open.set(call.id, item);
        }
        break;
      }
      case "tool": {
        const call = native ? open.get(message.tool_call_id ?? "") : undefined;
        if (call) {
          call.result = parseArguments(message.content);
          break;
        }
        history.push({ type: "user", text: toolResultText(message.content, message.tool_call_id ?? "", message.name) });
        break;
      }
    }
    if (message.role !== "tool" && message.role !== "assistant") open.clear();
  }
  // A trailing assistant message is a prefix the model continues (the result is only the continuation);
  // after tool results, the model goes on in the turn that called them.
  if (history.at(-1)?.type !== "model") history.push({ type: "model", response: [] });
  return history;
}
