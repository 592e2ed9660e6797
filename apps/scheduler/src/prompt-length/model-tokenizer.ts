import type { ChatMessage } from "@corral/shared";
import {
  GeneralChatWrapper,
  LlamaVocabularyType,
  resolveChatWrapper,
  type ChatHistoryItem,
  type ChatWrapper,
  type Llama,
  type LlamaModel,
  type Token,
} from "node-llama-cpp";

/**
 * A model's vocabulary alone (node-llama-cpp `vocabOnly`: no weights, no context), counting
 * prompt tokens exactly as the worker's engine does (apps/worker/src/engine/loaded-model.ts):
 * - a completion prompt is tokenized as LlamaCompletion does, plus the BOS token it prepends;
 * - a chat is the model's chat template (the GGUF's, else node-llama-cpp's General) applied
 *   to the history, tokenized whole, template tokens included.
 * The three small helpers below mirror the worker's `chatWrapperFor`, `toChatHistory` and
 * `beginningTokenOf`; test/api/prompt-length.test.ts checks both sides count alike.
 */
export class ModelTokenizer {
  readonly #model: LlamaModel;
  readonly #chatWrapper: ChatWrapper;
  readonly #beginningToken: Token | null;
  #maxTokenBytes: number | null | undefined;

  private constructor(model: LlamaModel) {
    this.#model = model;
    this.#chatWrapper = chatWrapperFor(model);
    this.#beginningToken = beginningTokenOf(model);
  }

  /** Loads the vocabulary of the GGUF at `path`. */
  static async load(llama: Llama, path: string): Promise<ModelTokenizer> {
    const model = await llama.loadModel({ modelPath: path, vocabOnly: true, gpuLayers: 0 });
    return new ModelTokenizer(model);
  }

  /** Tokens the worker feeds the model for a completion prompt (BOS included). */
  countPrompt(prompt: string): number {
    const bos = this.#beginningToken !== null;
    return this.#model.tokenize(prompt, false, bos ? "trimLeadingSpace" : undefined).length + (bos ? 1 : 0);
  }

  /** Tokens of a chat as the worker sends it: the chat template over every message, ending with the model's turn. */
  countChat(messages: readonly ChatMessage[]): number {
    return this.#chatWrapper
      .generateContextState({ chatHistory: toChatHistory(messages) })
      .contextText.tokenize(this.#model.tokenizer).length;
  }

  /**
   * The most UTF-8 bytes of text one token stands for, for vocabularies that tokenize text
   * as it is (SentencePiece and BPE: the tokens' texts concatenate back to the input, plus
   * at most a leading space); null for the others (WordPiece drops whitespace, Unigram
   * normalizes), where no byte bound holds. Computed once, on first use.
   */
  get maxTokenBytes(): number | null {
    if (this.#maxTokenBytes !== undefined) return this.#maxTokenBytes;
    const type = this.#model.vocabularyType;
    if (type !== LlamaVocabularyType.spm && type !== LlamaVocabularyType.bpe) return (this.#maxTokenBytes = null);
    let max = 1;
    const count = this.#model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length ?? 0;
    for (let token = 0; token < count; token++) {
      // A partial UTF-8 sequence detokenizes to U+FFFD (3 bytes): more than it stands for, still an upper bound.
      const bytes = Buffer.byteLength(this.#model.detokenize([token as Token], true));
      if (bytes > max) max = bytes;
    }
    return (this.#maxTokenBytes = count > 0 ? max : null);
  }

  /** Frees the vocabulary. Idempotent. */
  async dispose(): Promise<void> {
    await this.#model.dispose();
  }
}

/** The GGUF's own chat template when it has one, else a plain "role: text" format (as the worker). */
function chatWrapperFor(model: LlamaModel): ChatWrapper {
  const template = model.fileInfo.metadata?.tokenizer?.chat_template;
  if (typeof template === "string" && template.trim() !== "") {
    return resolveChatWrapper(model, { warningLogs: false });
  }
  return new GeneralChatWrapper();
}

/** OpenAI roles → node-llama-cpp chat history, ending with the model turn to generate (as the worker). */
function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
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
  if (history.at(-1)?.type !== "model") history.push({ type: "model", response: [] });
  return history;
}

/** The token LlamaCompletion prepends to its input (as the worker). */
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
