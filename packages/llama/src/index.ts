export { acquireLlama, type LlamaLease, type LlamaLogSink } from "./llama-runtime.js";
export { chatWrapperFor, hasThoughtSegments, thinkingChatWrapper, toChatHistory } from "./chat-template.js";
export { PromptCounter } from "./prompt-counter.js";
