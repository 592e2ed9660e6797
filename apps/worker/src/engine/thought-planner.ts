import { REASONING_EFFORT_BUDGETS, type JobPayload } from "@corral/shared";
import { PromptCounter, hasThoughtSegments, thinkingChatWrapper } from "@corral/llama";
import type { ChatHistoryItem, ChatWrapper, LlamaGrammar, LlamaModel } from "node-llama-cpp";

/** How one chat job on a reasoning model runs. */
export interface ThinkingPlan {
  /** Most thought tokens (the job's `reasoning_budget`, or `REASONING_EFFORT_BUDGETS.medium`). */
  budget: number;
  /** The chat template it runs with. */
  chatWrapper: ChatWrapper;
  /** Prompt tokens of the history as this template feeds it (an opened thought's prefix included). */
  countPrompt(history: ChatHistoryItem[]): number;
}

/**
 * Decides how chat jobs think on one loaded model. A model reasons when its chat template
 * has thought segments (see @corral/llama's hasThoughtSegments); an R1-style one also
 * gets its thought opened at the start of each response (thinkingChatWrapper), unless the
 * job's budget is 0 or a grammar constrains the output: a thought opened under a JSON
 * grammar would take the answer's place, and under a grammar the model cannot open one.
 */
export class ThoughtPlanner {
  /** The model's chat template has thought segments. */
  readonly reasoning: boolean;
  readonly #chatWrapper: ChatWrapper;
  readonly #prompts: PromptCounter;
  readonly #opening: { chatWrapper: ChatWrapper; prompts: PromptCounter } | null;

  constructor(model: LlamaModel, chatWrapper: ChatWrapper, prompts: PromptCounter) {
    this.reasoning = hasThoughtSegments(chatWrapper);
    this.#chatWrapper = chatWrapper;
    this.#prompts = prompts;
    const opening = thinkingChatWrapper(model, chatWrapper);
    this.#opening = opening ? { chatWrapper: opening, prompts: new PromptCounter(model, opening) } : null;
  }

  /** How a chat job thinks; null when the model does not reason. */
  plan(job: JobPayload, grammar: LlamaGrammar | undefined): ThinkingPlan | null {
    if (!this.reasoning) return null;
    const budget = job.reasoning_budget ?? REASONING_EFFORT_BUDGETS.medium;
    const opening = this.#opening;
    if (opening !== null && budget > 0 && grammar === undefined) {
      return {
        budget,
        chatWrapper: opening.chatWrapper,
        countPrompt: (history) => opening.prompts.countChatHistory(withOpenThought(history)),
      };
    }
    return {
      budget,
      chatWrapper: this.#chatWrapper,
      countPrompt: (history) => this.#prompts.countChatHistory(history),
    };
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
