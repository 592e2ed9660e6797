import { REASONING_EFFORT_BUDGETS, type JobPayload, type JobTools, type ResponseFormat } from "@corral/shared";
import type { ChatHistoryItem, ChatModelFunctions, ChatWrapper, LlamaModel } from "node-llama-cpp";
import { hasThoughtSegments, thinkingChatWrapper, toChatHistory } from "./chat-template.js";
import { PromptCounter } from "./prompt-counter.js";
import {
  chatFunctions,
  forcingChatWrapper,
  functionCallOverheadTokens,
  hasNativeToolSyntax,
  toolCallResponseFormat,
} from "./tool-calls.js";

/** What the planner reads of a chat job. */
export type ChatJob = Pick<JobPayload, "messages" | "tools" | "reasoning_budget" | "response_format">;

/** How one chat job runs on a model. */
export interface ChatPlan {
  history: ChatHistoryItem[];
  /** The chat template it runs with (the model's, or a copy that opens a thought or forces a call). */
  chatWrapper: ChatWrapper;
  /** Prompt tokens of the history as this template feeds it (functions and an opened thought included). */
  promptTokens: number;
  /**
   * Context room to leave free besides the prompt and `max_tokens`: native tools, the
   * template's call syntax node-llama-cpp writes itself (see functionCallOverheadTokens).
   */
  reservedTokens: number;
  /** The output's response format: the job's, or the grammar of a template-agnostic forced call. */
  responseFormat: ResponseFormat | undefined;
  /** How its tools reach the model; null without tools. */
  tools: { rendering: "native" | "text"; tools: JobTools } | null;
  /** Native tools: the functions LlamaChat gets, and most calls per reply. */
  functions: { functions: ChatModelFunctions; maxCalls: number } | null;
  /** Reasoning models: the most thought tokens; null for the others. */
  thoughtBudget: number | null;
}

/**
 * Decides how chat jobs run on one model: how their tools reach it (see tool-calls.ts)
 * and how it thinks. The worker runs a job with the plan, and the scheduler counts its
 * prompt with the same plan, so both count the same tokens.
 *
 * Thinking: a model reasons when its chat template has thought segments (see
 * hasThoughtSegments); an R1-style one also gets its thought opened at the start of each
 * response (thinkingChatWrapper), unless the job's budget is 0 or its output is
 * constrained (a grammar, or a forced call): a thought opened under a JSON grammar would
 * take the answer's place, and under a grammar the model cannot open one.
 */
export class ChatPlanner {
  /** The model's chat template has thought segments. */
  readonly reasoning: boolean;
  /** The model's chat template has its own function-call syntax (see hasNativeToolSyntax). */
  readonly nativeTools: boolean;
  readonly #model: LlamaModel;
  readonly #chatWrapper: ChatWrapper;
  readonly #prompts: PromptCounter;
  readonly #opening: { chatWrapper: ChatWrapper; prompts: PromptCounter } | null;
  #forcing: { chatWrapper: ChatWrapper; prompts: PromptCounter } | null = null;

  constructor(model: LlamaModel, chatWrapper: ChatWrapper, prompts = new PromptCounter(model, chatWrapper)) {
    this.#model = model;
    this.#chatWrapper = chatWrapper;
    this.#prompts = prompts;
    this.reasoning = hasThoughtSegments(chatWrapper);
    this.nativeTools = hasNativeToolSyntax(model, chatWrapper);
    const opening = thinkingChatWrapper(model, chatWrapper);
    this.#opening = opening ? { chatWrapper: opening, prompts: new PromptCounter(model, opening) } : null;
  }

  /** How `job` runs. */
  plan(job: ChatJob): ChatPlan {
    const messages = job.messages ?? [];
    const tools = job.tools;
    const functions = tools && this.nativeTools ? chatFunctions(tools) : null;
    const thoughtBudget = this.reasoning ? (job.reasoning_budget ?? REASONING_EFFORT_BUDGETS.medium) : null;

    if (tools && functions) {
      const history = toChatHistory(messages, { rendering: "native", tools });
      const forced = tools.required ? this.#forcingTemplate() : null;
      const run =
        forced ??
        (thoughtBudget && this.#opening ? this.#opening : { chatWrapper: this.#chatWrapper, prompts: this.#prompts });
      const counted = run === this.#opening ? withOpenThought(history) : history;
      return {
        history,
        chatWrapper: run.chatWrapper,
        promptTokens: run.prompts.countChatHistory(counted, functions),
        reservedTokens: functionCallOverheadTokens(this.#chatWrapper, this.#model, tools.max_calls),
        responseFormat: job.response_format,
        tools: { rendering: "native", tools },
        functions: { functions, maxCalls: tools.max_calls },
        thoughtBudget,
      };
    }

    const history = toChatHistory(messages, { rendering: "text", ...(tools ? { tools } : {}) });
    const responseFormat = tools?.required ? toolCallResponseFormat(tools) : job.response_format;
    const constrained = responseFormat !== undefined && responseFormat.type !== "text";
    const opening = thoughtBudget && !constrained ? this.#opening : null;
    return {
      history,
      chatWrapper: opening?.chatWrapper ?? this.#chatWrapper,
      promptTokens: opening
        ? opening.prompts.countChatHistory(withOpenThought(history))
        : this.#prompts.countChatHistory(history),
      reservedTokens: 0,
      responseFormat,
      tools: tools ? { rendering: "text", tools } : null,
      functions: null,
      thoughtBudget,
    };
  }

  #forcingTemplate(): { chatWrapper: ChatWrapper; prompts: PromptCounter } {
    if (!this.#forcing) {
      const chatWrapper = forcingChatWrapper(this.#chatWrapper);
      this.#forcing = { chatWrapper, prompts: new PromptCounter(this.#model, chatWrapper) };
    }
    return this.#forcing;
  }
}

/** The history with the model's turn opened by a thought, as an R1-style template renders it. */
function withOpenThought(history: ChatHistoryItem[]): ChatHistoryItem[] {
  const last = history.at(-1);
  if (last?.type !== "model" || last.response.length > 0) return history;
  return [
    ...history.slice(0, -1),
    { type: "model", response: [{ type: "segment", segmentType: "thought", text: "", ended: false }] },
  ];
}
