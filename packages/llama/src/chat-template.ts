import type { ChatMessage } from "@corral/shared";
import {
  DeepSeekChatWrapper,
  GeneralChatWrapper,
  resolveChatWrapper,
  type ChatHistoryItem,
  type ChatWrapper,
  type LlamaModel,
} from "node-llama-cpp";

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

/** OpenAI roles → node-llama-cpp chat history, ending with the model turn to generate. */
export function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = messages.map((message): ChatHistoryItem => {
    switch (message.role) {
      case "system":
        return { type: "system", text: message.content };
      case "user":
        return { type: "user", text: message.content };
      case "assistant":
        return { type: "model", response: [message.content] };
    }
  });
  // A trailing assistant message is a prefix the model continues (the result is only the continuation).
  if (history.at(-1)?.type !== "model") history.push({ type: "model", response: [] });
  return history;
}
