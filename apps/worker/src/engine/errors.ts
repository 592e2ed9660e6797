import { CorralError, UnsupportedSchemaError } from "@corral/shared";
import { InsufficientMemoryError } from "node-llama-cpp";

/**
 * The model file is missing, unreadable, or not a GGUF llama.cpp can load. Retrying on
 * this worker will not help: the job fails without spending further attempts.
 */
export class ModelFileError extends CorralError {
  override readonly name = "ModelFileError";
  override readonly status = 500;
  override readonly type = "server_error";
  readonly path: string;
  readonly reason: string;

  constructor(path: string, reason: string, options: { cause?: unknown } = {}) {
    super(`Model file ${path}: ${reason}`, { code: "model_file_error", cause: options.cause });
    this.path = path;
    this.reason = reason;
  }
}

/** The prompt (as the model sees it, chat template included) leaves no room to generate. */
export class PromptTooLongError extends CorralError {
  override readonly name = "PromptTooLongError";
  override readonly status = 400;
  override readonly type = "invalid_request_error";
  readonly promptTokens: number;
  /** Context size of one sequence, in tokens. */
  readonly contextSize: number;
  readonly maxTokens: number;

  constructor(promptTokens: number, contextSize: number, maxTokens: number) {
    super(
      `The prompt is ${promptTokens} tokens, which leaves no room to generate in the model's context of ${contextSize} tokens per sequence (max_tokens ${maxTokens}). Shorten the prompt.`,
      { code: "context_length_exceeded", param: "messages" },
    );
    this.promptTokens = promptTokens;
    this.contextSize = contextSize;
    this.maxTokens = maxTokens;
  }
}

/**
 * Loading the model or creating its context ran out of (V)RAM. The job goes back to its
 * lane without spending an attempt; the slot marks the model as not fitting for a while.
 */
export class OutOfMemoryError extends CorralError {
  override readonly name = "OutOfMemoryError";
  override readonly status = 503;
  override readonly type = "server_error";
  readonly modelId: string;
  /** What ran out of memory. */
  readonly phase: "load" | "context" | "embedding-context";

  constructor(modelId: string, phase: OutOfMemoryError["phase"], detail: string, options: { cause?: unknown } = {}) {
    super(`Out of memory in ${phase} of model ${modelId}: ${detail}`, { code: "out_of_memory", cause: options.cause });
    this.modelId = modelId;
    this.phase = phase;
  }
}

/** The job payload lacks what its kind needs (e.g. a chat without messages). */
export class InvalidJobError extends CorralError {
  override readonly name = "InvalidJobError";
  override readonly status = 400;
  override readonly type = "invalid_request_error";
  readonly jobId: string;

  constructor(jobId: string, message: string, param: string | null = null) {
    super(`Job ${jobId}: ${message}`, { code: "invalid_job", param });
    this.jobId = jobId;
  }
}

/** The model was disposed while a job waited for one of its sequences. */
export class ModelDisposedError extends CorralError {
  override readonly name = "ModelDisposedError";
  readonly modelId: string;

  constructor(modelId: string) {
    super(`Model ${modelId} was unloaded before the job got a sequence`, { code: "model_unloaded" });
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
    error instanceof InvalidJobError
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
