import type { CatalogModel } from "@corral/shared";
import type { JobInput } from "../jobs/types.js";
import type { ChatRequest, CompletionRequest, EmbeddingRequest, Sampling } from "./schemas.js";

/** OpenAI's default `max_tokens` for `/v1/completions`. */
export const COMPLETIONS_DEFAULT_MAX_TOKENS = 16;

const UINT32 = 2 ** 32;

/** Folds any integer seed into llama.cpp's 0..2^32-1. */
export const foldSeed = (seed: number): number => ((seed % UINT32) + UINT32) % UINT32;

/**
 * One job per choice of a chat request, in choice order. Choice `i` of `n` gets seed
 * `seed + i`, so a seeded request with n > 1 gives n different (but reproducible)
 * choices. Without `max_tokens` a chat may fill the model's context, as on OpenAI.
 */
export function chatJobInputs(request: ChatRequest, model: CatalogModel, stream: boolean): JobInput[] {
  const inputs: JobInput[] = [];
  for (let i = 0; i < request.n; i++) {
    inputs.push({
      ...samplingInput(request.sampling, i, request.sampling.max_tokens ?? model.context_size),
      ...(request.sampling.max_tokens === undefined ? { max_tokens_is_default: true } : {}),
      // How the model sees and calls them is the worker's: see @corral/llama's tool-calls.ts.
      ...(request.tools ? { tools: request.tools } : {}),
      model: model.id,
      messages: request.messages,
      kind: "chat",
      stream,
      ...metadata(request.user),
    });
  }
  return inputs;
}

/**
 * One job per prompt and choice: prompt p's choice c is choice `p * n + c`, as OpenAI indexes
 * them. With `best_of` > n, prompt p's candidate c is job `p * best_of + c` instead.
 */
export function completionJobInputs(request: CompletionRequest, model: CatalogModel, stream: boolean): JobInput[] {
  const inputs: JobInput[] = [];
  for (const prompt of request.prompts) {
    for (let c = 0; c < request.bestOf; c++) {
      inputs.push({
        ...samplingInput(request.sampling, c, request.sampling.max_tokens ?? COMPLETIONS_DEFAULT_MAX_TOKENS),
        model: model.id,
        prompt,
        kind: "completion",
        stream,
        ...metadata(request.user),
      });
    }
  }
  return inputs;
}

/** One embedding job for all the inputs of a request. */
export function embeddingJobInput(request: EmbeddingRequest, model: CatalogModel): JobInput {
  return {
    model: model.id,
    input: request.inputs,
    kind: "embedding",
    max_tokens: 1,
    temperature: 0,
    stream: false,
    ...metadata(request.user),
  };
}

function samplingInput(
  sampling: Sampling,
  choice: number,
  maxTokens: number,
): Omit<JobInput, "model" | "messages" | "prompt" | "kind"> {
  return {
    max_tokens: maxTokens,
    temperature: sampling.temperature,
    ...(sampling.top_p !== undefined ? { top_p: sampling.top_p } : {}),
    ...(sampling.top_k !== undefined ? { top_k: sampling.top_k } : {}),
    ...(sampling.seed !== undefined ? { seed: foldSeed(sampling.seed + choice) } : {}),
    ...(sampling.stop ? { stop: sampling.stop } : {}),
    ...(sampling.response_format ? { response_format: sampling.response_format } : {}),
    ...(sampling.frequency_penalty ? { frequency_penalty: sampling.frequency_penalty } : {}),
    ...(sampling.presence_penalty ? { presence_penalty: sampling.presence_penalty } : {}),
    ...(sampling.logit_bias ? { logit_bias: sampling.logit_bias } : {}),
    ...(sampling.logprobs !== undefined ? { logprobs: true, top_logprobs: sampling.logprobs } : {}),
    ...(sampling.reasoning_budget !== undefined ? { reasoning_budget: sampling.reasoning_budget } : {}),
  };
}

/** OpenAI's `user` is kept in the job's metadata (visible in `GET /v1/jobs`). */
const metadata = (user: string | undefined): Pick<JobInput, "metadata"> =>
  user ? { metadata: { openai_user: user } } : {};
