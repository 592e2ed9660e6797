import type { JobChatMessage } from "@corral/shared";
import {
  LlamaVocabularyType,
  type ChatHistoryItem,
  type ChatModelFunctions,
  type ChatWrapper,
  type LlamaModel,
  type Token,
} from "node-llama-cpp";
import { chatWrapperFor, toChatHistory } from "./chat-template.js";

/**
 * How many tokens a job's prompt takes in a model's context: the one count the worker's
 * engine uses to fit a job into its sequence and report `usage.prompt_tokens`, and the
 * scheduler uses to refuse at submit a prompt that cannot fit.
 * - A completion prompt is tokenized as LlamaCompletion tokenizes a string, plus the
 *   beginning token (BOS) it prepends.
 * - A chat is the model's chat template applied to the history, tokenized whole, template
 *   tokens included.
 * Needs only the model's vocabulary (a `vocabOnly` model counts as well as a loaded one).
 */
export class PromptCounter {
  /** The chat template chats are counted (and run) with. */
  readonly chatWrapper: ChatWrapper;
  /** Whether LlamaCompletion prepends a beginning token to a completion prompt. */
  readonly prependsBeginningToken: boolean;
  /** The beginning token LlamaCompletion prepends to a completion prompt; null: none. */
  readonly beginningToken: Token | null;
  readonly #model: LlamaModel;

  /** @param chatWrapper the chat template; default {@link chatWrapperFor}(model). */
  constructor(model: LlamaModel, chatWrapper: ChatWrapper = chatWrapperFor(model)) {
    this.#model = model;
    this.chatWrapper = chatWrapper;
    this.beginningToken = beginningTokenOf(model);
    this.prependsBeginningToken = this.beginningToken !== null;
  }

  /** A completion prompt's tokens as LlamaCompletion tokenizes a string, without the beginning token it adds. */
  tokenizePrompt(prompt: string): Token[] {
    return this.#model.tokenize(prompt, false, this.prependsBeginningToken ? "trimLeadingSpace" : undefined);
  }

  /** Tokens the model is fed for a completion prompt already tokenized by {@link tokenizePrompt}. */
  countPromptTokens(tokens: readonly Token[]): number {
    return tokens.length + (this.prependsBeginningToken ? 1 : 0);
  }

  /** Tokens the model is fed for a completion prompt (beginning token included). */
  countPrompt(prompt: string): number {
    return this.countPromptTokens(this.tokenizePrompt(prompt));
  }

  /**
   * Tokens of a chat history: the chat template over every item (and over the functions
   * the model may call, documented as LlamaChat documents them, when given).
   */
  countChatHistory(history: ChatHistoryItem[], functions?: ChatModelFunctions): number {
    return this.tokenizeChatHistory(history, functions).length;
  }

  /** A chat history's tokens: the chat template over every item (and the functions, when given), tokenized whole. */
  tokenizeChatHistory(history: ChatHistoryItem[], functions?: ChatModelFunctions): Token[] {
    return this.chatWrapper
      .generateContextState({
        chatHistory: history,
        ...(functions ? { availableFunctions: functions, documentFunctionParams: true } : {}),
      })
      .contextText.tokenize(this.#model.tokenizer);
  }

  /** Tokens of a chat as the worker runs it: the chat template over every message, ending with the model's turn. */
  countChat(messages: readonly JobChatMessage[]): number {
    return this.countChatHistory(toChatHistory(messages));
  }
}

/** The token LlamaCompletion prepends to its input (mirrors node-llama-cpp's tokenizer rules). */
function beginningTokenOf(model: LlamaModel): Token | null {
  switch (model.vocabularyType) {
    case LlamaVocabularyType.rwkv:
    case LlamaVocabularyType.ugm:
      return null;
    case LlamaVocabularyType.wpm:
      return model.tokens.bos;
    default:
      return model.tokens.shouldPrependBosToken ? model.tokens.bos : null;
  }
}
