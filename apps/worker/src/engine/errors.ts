import { JobFailureError, UnsupportedSchemaError } from "@corral/shared";
import { InsufficientMemoryError } from "node-llama-cpp";

/*
 * The errors that fail a job on this worker. Each carries the job error code its record
 * stores and no HTTP: the scheduler decides what a code means to the client.
 */

/**
 * The model file is missing, unreadable, or not a GGUF llama.cpp can load. Retrying on
 * this worker will not help: the job fails without spending further attempts.
 */
export class ModelFileError extends JobFailureError {
  override readonly name = "ModelFileError";
  readonly path: string;
  readonly reason: string;

  constructor(path: string, reason: string, options: { cause?: unknown } = {}) {
    super(`Model file ${path}: ${reason}`, "model_file_error", options);
    this.path = path;
    this.reason = reason;
  }
}

/** The prompt (as the model sees it, chat template included) leaves no room to generate. */
export class PromptTooLongError extends JobFailureError {
  override readonly name = "PromptTooLongError";
  readonly promptTokens: number;
  /** Context size of one sequence, in tokens. */
  readonly contextSize: number;
  readonly maxTokens: number;

  constructor(promptTokens: number, contextSize: number, maxTokens: number) {
    super(
      `The prompt is ${promptTokens} tokens, which leaves no room to generate in the model's context of ${contextSize} tokens per sequence (max_tokens ${maxTokens}). Shorten the prompt.`,
      "context_length_exceeded",
    );
    this.promptTokens = promptTokens;
    this.contextSize = contextSize;
    this.maxTokens = maxTokens;
  }
}

/**
 * The job went over one of the worker's limits per job: its wall time
 * (`CORRAL_JOB_TIMEOUT_MS`, code `job_timeout`) or the slowest token rate allowed
 * (`CORRAL_JOB_MIN_TOKENS_PER_SECOND`, code `job_too_slow`). Its generation was stopped;
 * retrying would only hold a sequence as long again, so it is not retried.
 */
export class JobLimitError extends JobFailureError {
  override readonly name = "JobLimitError";
  readonly limit: "wall-time" | "token-rate";
  /** Milliseconds the job had run when it was stopped. */
  readonly elapsedMs: number;
  readonly completionTokens: number;

  constructor(limit: JobLimitError["limit"], message: string, elapsedMs: number, completionTokens: number) {
    super(message, limit === "wall-time" ? "job_timeout" : "job_too_slow");
    this.limit = limit;
    this.elapsedMs = elapsedMs;
    this.completionTokens = completionTokens;
  }
}

/**
 * Loading the model or creating its context ran out of (V)RAM. The job goes back to its
 * lane without spending an attempt; the slot marks the model as not fitting for a while.
 */
export class OutOfMemoryError extends JobFailureError {
  override readonly name = "OutOfMemoryError";
  readonly modelId: string;
  /** What ran out of memory. */
  readonly phase: "load" | "context" | "embedding-context";

  constructor(modelId: string, phase: OutOfMemoryError["phase"], detail: string, options: { cause?: unknown } = {}) {
    super(`Out of memory in ${phase} of model ${modelId}: ${detail}`, "out_of_memory", options);
    this.modelId = modelId;
    this.phase = phase;
  }
}

/** The job payload lacks what its kind needs (e.g. a chat without messages). */
export class InvalidJobError extends JobFailureError {
  override readonly name = "InvalidJobError";
  readonly jobId: string;
  /** The payload field that is missing or unusable (`prompt`, `messages`, `input`), when one is. */
  readonly field: string | null;

  constructor(jobId: string, message: string, field: string | null = null) {
    super(`Job ${jobId}: ${message}`, "invalid_job");
    this.jobId = jobId;
    this.field = field;
  }
}

/** A `logit_bias` key names no token of the job's model (the scheduler cannot know its vocabulary). */
export class InvalidLogitBiasError extends JobFailureError {
  override readonly name = "InvalidLogitBiasError";
  readonly token: number;
  readonly vocabularySize: number;

  constructor(token: number, vocabularySize: number) {
    super(
      `Invalid value for \`logit_bias\`: token id ${token} is not in the model's vocabulary (ids 0 to ${vocabularySize - 1}).`,
      "invalid_logit_bias",
    );
    this.token = token;
    this.vocabularySize = vocabularySize;
  }
}

/** The model was disposed while a job waited for one of its sequences. */
export class ModelDisposedError extends JobFailureError {
  override readonly name = "ModelDisposedError";
  readonly modelId: string;

  constructor(modelId: string) {
    super(`Model ${modelId} was unloaded before the job got a sequence`, "model_unloaded");
    this.modelId = modelId;
  }
}

/**
 * Whether retrying the job elsewhere or later cannot succeed: the claim loop fails it with
 * BullMQ's `UnrecoverableError`. Out-of-memory is not unrecoverable (see {@link isOutOfMemory}).
 */
export function isUnrecoverable(error: unknown): boolean {
  return (
    error instanceof ModelFileError ||
    error instanceof PromptTooLongError ||
    error instanceof UnsupportedSchemaError ||
    error instanceof InvalidJobError ||
    error instanceof InvalidLogitBiasError ||
    error instanceof JobLimitError
  );
}

const OUT_OF_MEMORY_PATTERN =
  /out of memory|failed to allocate|cudaMalloc|unable to allocate|insufficient memory|ErrorOutOfDeviceMemory|not enough (v?ram|memory)/i;

/**
 * Whether an error (or one of its causes, or a llama.cpp log line) means memory ran out.
 * `OutOfMemoryError`s release the job without spending an attempt.
 */
export function isOutOfMemory(error: unknown): boolean {
  for (let current = error, depth = 0; current != null && depth < 5; depth++) {
    if (current instanceof OutOfMemoryError || current instanceof InsufficientMemoryError) return true;
    if (typeof current === "string") return OUT_OF_MEMORY_PATTERN.test(current);
    if (current instanceof Error) {
      if (OUT_OF_MEMORY_PATTERN.test(current.message)) return true;
      current = current.cause;
    } else return false;
  }
  return false;
}

/** Message of an unknown thrown value. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
