import type { FinishReason, JobToolCall, TokenLogprob, TranscriptionResult, Usage } from "@corral/shared";
import type { Llama, LlamaModel, LlamaModelOptions } from "node-llama-cpp";
import type { Logger } from "pino";
import type { JobLimits } from "./limit-watch.js";

/** The compute backend llama.cpp runs on. */
export type EngineBackend = "cpu" | "cuda" | "vulkan" | "metal";

export interface EngineOptions {
  /**
   * `false` for CPU slots; `"auto"` picks CUDA, Vulkan or Metal when a prebuilt binary for
   * it exists and works, else the CPU.
   * @defaultValue "auto"
   */
  gpu?: "auto" | false;
  /**
   * Threads per context (generation and embedding).
   * @defaultValue 1
   */
  threads?: number;
  /**
   * On the CPU backend, time a few tokens of each model at 1 thread and at `threads` when
   * it loads, and keep the faster (the fewer when within 5%); see thread-calibration.ts.
   * Each model file is timed once per engine. Off: every context uses `threads`.
   * @defaultValue false
   */
  calibrateThreads?: boolean;
  /** The engine logs through a child named "engine"; llama.cpp's own log goes to it too. */
  logger: Logger;
  /**
   * Loads a model. Injectable for tests (e.g. to simulate out-of-memory).
   * @defaultValue `(llama, options) => llama.loadModel(options)`
   */
  loadModel?: (llama: Llama, options: LlamaModelOptions) => Promise<LlamaModel>;
  /**
   * The models folder: `load` refuses (ModelFileError) a path that is not inside it, since
   * the catalog naming the files comes from Redis. See `modelFilePath`.
   * @defaultValue none (any path loads)
   */
  modelsDir?: string;
  /**
   * Keep each sequence's evaluated tokens after a job and, when the next job's prompt
   * starts with the same tokens, evaluate only the rest (see PrefixReuse). Off: every
   * sequence is cleared after each job.
   * @defaultValue true
   */
  prefixReuse?: boolean;
  /**
   * Wall time and slowest token rate of every job: one over either is stopped and fails
   * with a JobLimitError (`job_timeout`, `job_too_slow`).
   * @defaultValue none
   */
  limits?: JobLimits;
}

export interface LoadOptions {
  /** Catalog id of the model, used in logs and errors. */
  modelId: string;
  /** Absolute path of the GGUF file. */
  path: string;
  /**
   * Context size of ONE sequence, in tokens (the catalog's `context_size`). llama.cpp
   * rounds it up to a multiple of 256; `LoadedModel.contextSize` is the real value.
   */
  contextSize: number;
  /** Parallel sequences: how many jobs can run at once on this model. */
  sequences: number;
  /** Aborts the load (e.g. on shutdown). */
  signal?: AbortSignal;
}

export interface RunOptions {
  /** Aborting stops generation; the result then has finish_reason "cancelled" and the partial text. */
  signal?: AbortSignal;
  /**
   * Receives each text chunk as it is generated (stop strings held back and removed).
   * Called synchronously from the generation loop: it must not throw or block. For jobs
   * with `logprobs`, `logprobs` are those of the tokens this text (and any text held back
   * before it) came from.
   */
  onText?: (text: string, logprobs?: TokenLogprob[]) => void;
  /**
   * Chat jobs on a reasoning model: receives each chunk of the model's thoughts (a thought
   * segment's text, which is not in `onText`'s), as generated. Same rules as `onText`.
   */
  onReasoning?: (text: string) => void;
  /** Transcription and translation jobs: the uploaded audio's bytes (read from `JobPayload.audio.key`). */
  audio?: Uint8Array;
}

export interface EngineResult {
  text: string;
  finish_reason: FinishReason;
  usage: Usage;
  /**
   * Prompt tokens the sequence held from an earlier job and were not evaluated again
   * (prefix reuse); 0 when none, and for embeddings.
   */
  reused_prompt_tokens?: number;
  /** From the start of the run (after getting a sequence) to the first generated token; null when none came. */
  ttft_ms: number | null;
  /** Whole run: prompt evaluation plus generation. */
  generation_ms: number;
  /** Only for `kind: "embedding"` jobs: one vector per input. */
  embeddings?: number[][];
  /** Jobs with `logprobs`: one per generated token whose text is in `text`. */
  logprobs?: TokenLogprob[];
  /**
   * Chat jobs on a reasoning model (`LoadedModel.reasoning`): the thoughts, apart from the
   * answer in `text` ("" when it did not think); `usage.reasoning_tokens` counts them.
   */
  reasoning?: string;
  /**
   * Chat jobs with tools whose reply called them: the calls, in order (`text` is what the
   * model wrote besides them; for a template-agnostic call, the call's JSON itself).
   */
  tool_calls?: JobToolCall[];
  /** Transcription and translation jobs: language, duration and segments. */
  transcription?: TranscriptionResult;
}
