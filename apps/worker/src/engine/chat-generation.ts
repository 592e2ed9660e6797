import type { JobToolCall } from "@corral/shared";
import { newToolCallId } from "@corral/llama";
import {
  LlamaChat,
  type ChatHistoryItem,
  type ChatModelFunctions,
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
  /** Called when generated text is dropped: whitespace around a thought (its tokens are nobody's). */
  onDropped: () => void;
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
  /** With `functions`: the calls the model made in its template's syntax, in order, each with a new id. */
  functionCalls: JobToolCall[];
}

/** Functions the model may call in its chat template's own syntax (node-llama-cpp function calling). */
export interface ChatFunctionOptions {
  functions: ChatModelFunctions;
  /** Most calls in one reply (node-llama-cpp stops at the first when the template has no parallel calls). */
  maxCalls: number;
  /**
   * Stream the calls through `onTextChunk` as they are generated, in the template-agnostic
   * form `{"tool_calls": [{"name": …, "arguments": …}]}` (each call's name when it is
   * chosen, then its arguments' text as it comes), so a forced call streams the same way
   * whatever the template. Forced calls only: no text comes before them.
   */
  streamCalls?: boolean;
}

/**
 * Generates a chat response on `sequence` with node-llama-cpp's LlamaChat. With `thoughts`
 * (models whose chat template has thought segments, DeepSeek R1's `<think>…</think>`), the
 * thought segments LlamaChat reports through `onResponseChunk` are collected and passed on
 * apart from the answer, and `budgets.thoughtTokens` limits them; LlamaChat's `response`
 * is the answer alone. The thoughts are gathered from the same chunks that are streamed,
 * so the streamed thought text always adds up to `thoughts`.
 *
 * As llama.cpp's server parses R1's output, the whitespace around the thought (R1 writes
 * `<think>\n…\n</think>\n\n` before its answer) belongs to neither: the thoughts are
 * trimmed, and the answer of a job with `thoughts` starts at its first non-space
 * character. Streamed chunks are trimmed alike (a thought's trailing whitespace is held
 * until more of it comes), so they still add up to the results.
 */
export async function generateChat(
  sequence: LlamaContextSequence,
  chatWrapper: ChatWrapper,
  history: ChatHistoryItem[],
  options: SamplingOptions & { grammar: LlamaGrammar | undefined; functions?: ChatFunctionOptions | null },
  thoughts: ThoughtOptions | null,
): Promise<ChatGeneration> {
  const chat = new LlamaChat({ contextSequence: sequence, chatWrapper });
  const thought: string[] = [];
  let thoughtTokens = 0;
  /** Whitespace at the end of the thought so far: sent only if more thought follows. */
  let heldSpace = "";
  let answerStarted = false;
  const onThoughtText = (text: string): void => {
    // The thought's leading whitespace is dropped; trailing whitespace waits for more thought.
    const visible = thought.length === 0 ? text.trimStart() : text;
    const body = visible.trimEnd();
    if (body === "") {
      if (thought.length > 0) heldSpace += visible;
      thoughts?.onDropped();
      return;
    }
    const chunk = `${heldSpace}${body}`;
    heldSpace = visible.slice(body.length);
    thought.push(chunk);
    thoughts?.onThought(chunk);
  };
  const { grammar, functions, ...sampling } = options;
  let callsStreamed = -1;
  const onParamsChunk = (chunk: { callIndex: number; functionName: string; paramsChunk: string }): void => {
    let text = "";
    if (chunk.callIndex !== callsStreamed) {
      text = `${callsStreamed < 0 ? '{"tool_calls": [' : "}, "}{"name": ${JSON.stringify(chunk.functionName)}, "arguments": `;
      callsStreamed = chunk.callIndex;
    }
    text += chunk.paramsChunk;
    if (text !== "") sampling.onTextChunk?.(text);
  };
  try {
    const { response, metadata, functionCalls } = await chat.generateResponse(history, {
      ...sampling,
      // LlamaChat takes either a grammar or functions (whose calls it constrains with their own grammar).
      ...(functions
        ? {
            functions: functions.functions,
            documentFunctionParams: true,
            maxParallelFunctionCalls: functions.maxCalls,
            ...(functions.streamCalls ? { onFunctionCallParamsChunk: onParamsChunk } : {}),
          }
        : { grammar }),
      onTextChunk:
        thoughts === null
          ? options.onTextChunk
          : (text) => {
              if (!answerStarted) {
                text = text.trimStart();
                if (text === "") return thoughts.onDropped();
                answerStarted = true;
              }
              options.onTextChunk?.(text);
            },
      // Thought segments are not in onToken/onTextChunk, but their first token is the first token.
      onResponseChunk: (chunk) => {
        if (chunk.tokens.length > 0) options.onToken?.(chunk.tokens);
        if (chunk.type !== "segment" || chunk.segmentType !== "thought" || thoughts === null) return;
        thoughtTokens += chunk.tokens.length;
        if (chunk.text !== "") onThoughtText(chunk.text);
      },
      onToken: undefined,
      // Without one, node-llama-cpp caps thoughts at half the context (75% from 8192 tokens).
      ...(thoughts ? { budgets: { thoughtTokens: thoughts.budget } } : {}),
    });
    // The streamed calls' JSON is closed when the last one was finished (not cut by max_tokens).
    if (callsStreamed >= 0 && (functionCalls?.length ?? 0) === callsStreamed + 1) sampling.onTextChunk?.("}]}");
    return {
      response: thoughts === null ? response : response.trimStart(),
      stopReason: metadata.stopReason,
      thoughts: thoughts ? thought.join("") : null,
      thoughtTokens,
      functionCalls: (functionCalls ?? []).map((call) => ({
        id: newToolCallId(),
        name: call.functionName,
        arguments: JSON.stringify(call.params ?? {}),
      })),
    };
  } finally {
    chat.dispose({ disposeSequence: false });
  }
}
