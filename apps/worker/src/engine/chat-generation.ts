import {
  LlamaChat,
  type ChatHistoryItem,
  type ChatWrapper,
  type LlamaCompletion,
  type LlamaContextSequence,
  type LlamaGrammar,
} from "node-llama-cpp";

/** LlamaCompletion's sampling options, which LlamaChat shares (the grammar apart). */
export type SamplingOptions = Omit<
  NonNullable<Parameters<LlamaCompletion["generateCompletionWithMeta"]>[1]>,
  "grammar"
>;

/** How a reasoning model's thoughts are handled during one chat. */
export interface ThoughtOptions {
  /** Most thought tokens: node-llama-cpp closes the thought when it is reached, and the answer follows. */
  budget: number;
  /** Receives each chunk of thought text as it is generated. */
  onThought: (text: string) => void;
}

/** What one chat generation produced. */
export interface ChatGeneration {
  /** The answer: the response without its thought segments. */
  response: string;
  stopReason: string;
  /** Reasoning models: the text of the thought segments, as streamed; null for other models. */
  thoughts: string | null;
  /** Tokens of the thought segments' text (their `<think>` markers aside). */
  thoughtTokens: number;
}

/**
 * Generates a chat response on `sequence` with node-llama-cpp's LlamaChat. With `thoughts`
 * (models whose chat template has thought segments, DeepSeek R1's `<think>…</think>`), the
 * thought segments LlamaChat reports through `onResponseChunk` are collected and passed on
 * apart from the answer, and `budgets.thoughtTokens` limits them; LlamaChat's `response`
 * is the answer alone. The thoughts are gathered from the same chunks that are streamed,
 * so the streamed thought text always adds up to `thoughts`.
 */
export async function generateChat(
  sequence: LlamaContextSequence,
  chatWrapper: ChatWrapper,
  history: ChatHistoryItem[],
  options: SamplingOptions & { grammar: LlamaGrammar | undefined },
  thoughts: ThoughtOptions | null,
): Promise<ChatGeneration> {
  const chat = new LlamaChat({ contextSequence: sequence, chatWrapper });
  const thought: string[] = [];
  let thoughtTokens = 0;
  try {
    const { response, metadata } = await chat.generateResponse(history, {
      ...options,
      // Thought segments are not in onToken/onTextChunk, but their first token is the first token.
      onResponseChunk: (chunk) => {
        if (chunk.tokens.length > 0) options.onToken?.(chunk.tokens);
        if (chunk.type !== "segment" || chunk.segmentType !== "thought" || thoughts === null) return;
        thoughtTokens += chunk.tokens.length;
        if (chunk.text === "") return;
        thought.push(chunk.text);
        thoughts.onThought(chunk.text);
      },
      onToken: undefined,
      // Without one, node-llama-cpp caps thoughts at half the context (75% from 8192 tokens).
      ...(thoughts ? { budgets: { thoughtTokens: thoughts.budget } } : {}),
    });
    return {
      response,
      stopReason: metadata.stopReason,
      thoughts: thoughts ? thought.join("") : null,
      thoughtTokens,
    };
  } finally {
    chat.dispose({ disposeSequence: false });
  }
}
