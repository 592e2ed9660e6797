export { acquireLlama, type LlamaLease, type LlamaLogSink } from "./llama-runtime.js";
export { chatWrapperFor, hasThoughtSegments, thinkingChatWrapper, toChatHistory } from "./chat-template.js";
export { ChatPlanner, type ChatJob, type ChatPlan } from "./chat-planner.js";
export { PromptCounter } from "./prompt-counter.js";
export {
  chatFunctions,
  forcingChatWrapper,
  hasNativeToolSyntax,
  newToolCallId,
  parseToolCallsText,
  toolCallSchema,
  toolCallsText,
  toolResultText,
  toolsSystemText,
} from "./tool-calls.js";
