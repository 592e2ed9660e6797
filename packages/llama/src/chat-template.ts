import type { ChatMessage } from "@corral/shared";
import {
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
