import { z } from "zod";

/**
 * Why a job failed: the `code` a job record's `error` stores. The worker records one of
 * these (the scheduler too, for a job it could not enqueue); the scheduler reads it back and decides what it means over HTTP (one table,
 * `apps/scheduler/src/openai-format/job-error-responses.ts`). Nothing here knows HTTP.
 *
 * - `worker_error`: anything else that failed the job on its worker (the fallback).
 * - `invalid_payload`: the BullMQ job's data does not parse as a job payload.
 * - `invalid_job`: the payload lacks what its kind needs (a chat without messages).
 * - `job_stalled`: the job's worker died or hung more often than BullMQ's stall limit.
 * - `model_file_error`: the model file is missing, unreadable, or not a loadable GGUF.
 * - `context_length_exceeded`: the prompt leaves no room to generate in the model's context.
 * - `unsupported_schema`: a `json_schema` response format the grammar cannot enforce.
 * - `out_of_memory`: loading the model or its context ran out of (V)RAM.
 * - `model_unloaded`: the model was unloaded before the job got a sequence.
 * - `enqueue_failed`: the scheduler could not add the job to its queue (recorded by the scheduler).
 * - `job_timeout`: the job ran past the worker's wall-time limit per job (`CORRAL_JOB_TIMEOUT_MS`).
 * - `job_too_slow`: the job generated tokens slower than the worker's slowest allowed rate
 *   (`CORRAL_JOB_MIN_TOKENS_PER_SECOND`), e.g. under a grammar too heavy to sample.
 * - `invalid_logit_bias`: a `logit_bias` key is not a token id of the job's model.
 * - `model_removed`: the job's model left the catalog (its file was deleted, or models.yaml
 *   dropped it) while the job waited, and did not come back within the grace period
 *   (recorded by the scheduler).
 * - `audio_expired`: a transcription's uploaded audio (`JobPayload.audio.key`) was gone from
 *   Redis when a worker started the job: its TTL ran out while the job waited.
 */
export const JobErrorCode = z.enum([
  "worker_error",
  "invalid_payload",
  "invalid_job",
  "job_stalled",
  "model_file_error",
  "context_length_exceeded",
  "unsupported_schema",
  "out_of_memory",
  "model_unloaded",
  "enqueue_failed",
  "job_timeout",
  "job_too_slow",
  "model_removed",
  "invalid_logit_bias",
  "audio_expired",
]);
export type JobErrorCode = z.infer<typeof JobErrorCode>;

/** Every job error code, in declaration order. */
export const JOB_ERROR_CODES: readonly JobErrorCode[] = JobErrorCode.options;

/**
 * The code a thrown value records: its `code` when that is a job error code (a
 * {@link JobFailureError}'s always is), else `worker_error`. Other codes (a Node system
 * error's `ENOENT`, say) say nothing the scheduler can act on; the message keeps them.
 */
export function jobErrorCodeOf(error: unknown): JobErrorCode {
  const parsed = JobErrorCode.safeParse((error as { code?: unknown } | null)?.code);
  return parsed.success ? parsed.data : "worker_error";
}
