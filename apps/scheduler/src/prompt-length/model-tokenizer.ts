import { ChatPlanner, PromptCounter, chatWrapperFor, type ChatJob } from "@corral/llama";
import { LlamaVocabularyType, type Llama, type LlamaModel, type Token } from "node-llama-cpp";

/**
 * A model's vocabulary alone (node-llama-cpp `vocabOnly`: no weights, no context), counting
 * prompt tokens with the worker's own count (@corral/llama's PromptCounter: a completion
 * prompt plus the BOS token LlamaCompletion prepends; a chat as @corral/llama's ChatPlanner
 * plans it for the worker: through the model's chat template, with its tools and, on an
 * R1-style model, the thought the worker opens). test/api/prompt-length.test.ts checks the
 * worker reports the same counts.
 */
export class ModelTokenizer {
  readonly #model: LlamaModel;
  readonly #counter: PromptCounter;
  readonly #chats: ChatPlanner;
  #maxTokenBytes: number | null | undefined;

  private constructor(model: LlamaModel) {
    this.#model = model;
    const chatWrapper = chatWrapperFor(model);
    this.#counter = new PromptCounter(model, chatWrapper);
    this.#chats = new ChatPlanner(model, chatWrapper, this.#counter);
  }

  /** Loads the vocabulary of the GGUF at `path`. */
  static async load(llama: Llama, path: string): Promise<ModelTokenizer> {
    const model = await llama.loadModel({ modelPath: path, vocabOnly: true, gpuLayers: 0 });
    return new ModelTokenizer(model);
  }

  /** Tokens the worker feeds the model for a completion prompt (BOS included). */
  countPrompt(prompt: string): number {
    return this.#counter.countPrompt(prompt);
  }

  /**
   * Tokens of a chat job as the worker feeds it (its plan's prompt: template, tools, opened
   * thought), and the room it keeps free besides (native tools' call syntax).
   */
  countChat(job: ChatJob): { prompt: number; reserved: number } {
    const plan = this.#chats.plan(job);
    return { prompt: plan.promptTokens, reserved: plan.reservedTokens };
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
