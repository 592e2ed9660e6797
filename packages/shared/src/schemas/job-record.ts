import { z } from "zod";
import { JobErrorCode } from "../errors/job-error-code.js";
import {
  ChatMessage,
  LogitBias,
  MAX_REASONING_BUDGET,
  MAX_TOP_LOGPROBS,
  Penalty,
  ResponseFormat,
} from "./job-request.js";

export const JobStatus = z.enum(["queued", "running", "succeeded", "failed", "cancelled"]);
export type JobStatus = z.infer<typeof JobStatus>;

export const FINAL_STATUSES: readonly JobStatus[] = ["succeeded", "failed", "cancelled"];
export const isFinalStatus = (status: JobStatus): boolean => FINAL_STATUSES.includes(status);

export const FinishReason = z.enum(["stop", "length", "cancelled"]);
export type FinishReason = z.infer<typeof FinishReason>;

export const Usage = z.object({
  prompt_tokens: z.number().int().min(0),
  completion_tokens: z.number().int().min(0),
  /** Transcription and translation jobs: seconds of decoded audio (the audio usage unit). */
  audio_seconds: z.number().min(0).optional(),
  /**
   * Reasoning models: how many of `completion_tokens` were thought tokens (the text of
   * `result.reasoning`). Absent for models without thought segments.
   */
  reasoning_tokens: z.number().int().min(0).optional(),
});
export type Usage = z.infer<typeof Usage>;

/** Milliseconds spent in each phase of a job. */
export const JobTimings = z.object({
  queue_ms: z.number().min(0),
  load_ms: z.number().min(0),
  /** Prompt evaluation plus the first token: submit-independent engine latency. */
  ttft_ms: z.number().min(0).nullable(),
  generation_ms: z.number().min(0),
});
export type JobTimings = z.infer<typeof JobTimings>;

/**
 * An array that may have been through Redis' Lua cjson, which writes an empty array as
 * `{}` (job records are written by Lua scripts): `{}` reads as `[]`.
 */
const luaArray = <T extends z.ZodType>(item: T) =>
  z.preprocess(
    (value) =>
      value !== null && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length === 0
        ? []
        : value,
    z.array(item),
  );

/** One alternative for a generated token: its text, UTF-8 bytes and natural-log probability (≤ 0). */
export const TopLogprob = z.object({
  token: z.string(),
  bytes: luaArray(z.number().int().min(0).max(255)),
  logprob: z.number().max(0),
});
export type TopLogprob = z.infer<typeof TopLogprob>;

/** A generated token's log probability, with the most likely alternatives at its place (most likely first). */
export const TokenLogprob = TopLogprob.extend({
  top_logprobs: luaArray(TopLogprob),
});
export type TokenLogprob = z.infer<typeof TokenLogprob>;

/** One stretch of a transcript, times in seconds from the start of the audio. */
export const TranscriptSegment = z.object({
  id: z.number().int().min(0),
  start: z.number().min(0),
  end: z.number().min(0),
  text: z.string(),
  /** Per-word times, when the job asked for word timestamps and the engine gave them. */
  words: z.array(z.object({ word: z.string(), start: z.number().min(0), end: z.number().min(0) })).optional(),
});
export type TranscriptSegment = z.infer<typeof TranscriptSegment>;

/** What a transcription or translation job produced besides its text. */
export const TranscriptionResult = z.object({
  /** The spoken language (given, or detected), as a code: `en`. */
  language: z.string(),
  /** Seconds of decoded audio. */
  duration: z.number().min(0),
  segments: luaArray(TranscriptSegment),
});
export type TranscriptionResult = z.infer<typeof TranscriptionResult>;

/** A tool call in a chat job: OpenAI's call id, the function's name, its arguments as a JSON string. */
export const JobToolCall = z.object({
  id: z.string().min(1).max(128),
  name: z.string(),
  arguments: z.string(),
});
export type JobToolCall = z.infer<typeof JobToolCall>;

export const JobResult = z.object({
  text: z.string(),
  finish_reason: FinishReason,
  usage: Usage,
  timings: JobTimings,
  /** Embedding jobs only: one vector per input. */
  embeddings: z.array(z.array(z.number())).optional(),
  /** Jobs with `logprobs`: one entry per token of `text`, in order. */
  logprobs: luaArray(TokenLogprob).optional(),
  /** Transcription and translation jobs: language, duration and timed segments (`text` is the whole transcript). */
  transcription: TranscriptionResult.optional(),
  /**
   * Chat jobs on a reasoning model (its chat template has thought segments, such as
   * DeepSeek R1): the model's thoughts, apart from the answer in `text` ("" when it did
   * not think). Absent for other models.
   */
  reasoning: z.string().optional(),
  /**
   * Chat jobs with `tools`: the calls the model made, in order (absent when it answered
   * with content). `text` is then what it wrote besides them.
   */
  tool_calls: luaArray(JobToolCall).optional(),
});
export type JobResult = z.infer<typeof JobResult>;

/**
 * Why a job failed (or, on a `queued` record, why its last attempt did). A code this
 * version does not know (a record written by another version) reads as `worker_error`.
 */
export const JobError = z.object({
  message: z.string(),
  code: JobErrorCode.catch("worker_error"),
});
export type JobError = z.infer<typeof JobError>;

/** Where a job came from; decides its default priority. */
export const JobSource = z.enum(["native", "openai", "batch"]);
export type JobSource = z.infer<typeof JobSource>;

/** What a job does. `transcription` and `translation` (to English) run a Whisper model on audio. */
export const JobKind = z.enum(["completion", "chat", "embedding", "transcription", "translation"]);
export type JobKind = z.infer<typeof JobKind>;

/**
 * The audio of a transcription or translation job. The scheduler decodes the upload once
 * to check it and measure it, then stores the uploaded bytes as they came (smaller than
 * decoded samples) in a Redis string at `key` (`RedisKeys.audio(jobId)`), with a TTL; the
 * worker decodes them again to 16 kHz mono and deletes the key when the job ends.
 */
export const JobAudio = z.object({
  key: z.string(),
  /** Size of the stored upload, bytes (counts against the tenant's queued bytes). */
  bytes: z.number().int().min(0),
  /** Seconds of decoded audio, measured by the scheduler. */
  seconds: z.number().min(0),
  /** The upload's file name: a hint for the decoder's format probe. */
  filename: z.string().max(256),
});
export type JobAudio = z.infer<typeof JobAudio>;

/**
 * A chat job's message: a ChatMessage, or a `tool` message (a call's result, `content`,
 * answering the call `tool_call_id` of function `name`); an assistant message may carry
 * the `tool_calls` it made (its `content` is the text it wrote besides them). How these
 * reach the model depends on its chat template (@corral/llama's chat history).
 */
export const JobChatMessage = ChatMessage.extend({
  role: z.enum(["system", "user", "assistant", "tool"]),
  tool_calls: z.array(JobToolCall).optional(),
  tool_call_id: z.string().optional(),
  name: z.string().optional(),
});
export type JobChatMessage = z.infer<typeof JobChatMessage>;

/** A function a chat job's model may call. */
export const JobToolFunction = z.object({
  name: z.string(),
  description: z.string().optional(),
  /** The JSON Schema of its arguments (checked by the scheduler: a grammar can enforce it). */
  parameters: z.record(z.string(), z.unknown()),
});
export type JobToolFunction = z.infer<typeof JobToolFunction>;

/** A chat job's tools (OpenAI `tools` and `tool_choice`, `none` aside). */
export const JobTools = z.object({
  functions: z.array(JobToolFunction).min(1),
  /** `tool_choice` `required` or named: the reply is always a call. */
  required: z.boolean(),
  /** A named `tool_choice`: the only function it may call. */
  only: z.string().optional(),
  /** Most calls in one reply (1 when `parallel_tool_calls` is false). */
  max_calls: z.number().int().min(1),
});
export type JobTools = z.infer<typeof JobTools>;

/** What a worker needs to run a job: the BullMQ job's data. */
export const JobPayload = z.object({
  id: z.string(),
  tenant: z.string(),
  model: z.string(),
  /** Catalog file name of the model, relative to the worker's models directory. */
  file: z.string(),
  source: JobSource,
  kind: JobKind,
  /** Completions: the prompt. Transcriptions: the optional text that guides the style (Whisper's initial prompt). */
  prompt: z.string().optional(),
  messages: z.array(JobChatMessage).optional(),
  input: z.array(z.string()).optional(),
  max_tokens: z.number().int().min(1),
  temperature: z.number(),
  top_p: z.number().optional(),
  top_k: z.number().int().optional(),
  seed: z.number().int().optional(),
  stop: z.array(z.string()).optional(),
  frequency_penalty: Penalty.optional(),
  presence_penalty: Penalty.optional(),
  logit_bias: LogitBias.optional(),
  /** Return each generated token's log probability (`result.logprobs`, and in the token stream). */
  logprobs: z.boolean().optional(),
  /** With `logprobs`: how many of the most likely alternatives to list at each token. @defaultValue 0 */
  top_logprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).optional(),
  /**
   * Chat jobs on a reasoning model: most thought tokens before the thought is closed and the
   * answer begins (0: no thinking). Absent: `REASONING_EFFORT_BUDGETS.medium`. Other models ignore it.
   */
  reasoning_budget: z.number().int().min(0).max(MAX_REASONING_BUDGET).optional(),
  response_format: ResponseFormat.optional(),
  /** Chat jobs: the functions the model may call, and how (OpenAI `tools`, `tool_choice`). */
  tools: JobTools.optional(),
  /** Transcription and translation jobs: the audio to run. */
  audio: JobAudio.optional(),
  /** Transcription jobs: the spoken language as a code (`en`); absent: detect it. */
  language: z.string().max(16).optional(),
  /** Transcription and translation jobs: also time each word (`timestamp_granularities[]=word`). */
  word_timestamps: z.boolean().optional(),
  /** Whether the worker should append tokens to the job's Redis stream. */
  stream: z.boolean().default(true),
  /** VRAM (bytes) needed to run the model at full offload with its configured context. */
  requirement_bytes: z.number().int().min(0),
  /** Most of the tenant's jobs that may run at once (`CORRAL_TENANT_MAX_ACTIVE`); absent: no limit. */
  max_active: z.number().int().min(1).optional(),
  /**
   * What fair claim charged the tenant for the job when it was released (tokens: the
   * prompt, counted or estimated, + max_tokens); the worker settles the difference with
   * the tokens used. Absent: nothing to settle.
   */
  fair_cost: z.number().int().min(0).optional(),
  created_at: z.number(),
});
export type JobPayload = z.infer<typeof JobPayload>;

/** The job record clients see (`GET /v1/jobs/:id`). */
export const JobRecord = z.object({
  id: z.string(),
  object: z.literal("job").default("job"),
  tenant: z.string(),
  model: z.string(),
  source: JobSource,
  status: JobStatus,
  priority: z.number().int(),
  created_at: z.number(),
  started_at: z.number().nullable(),
  finished_at: z.number().nullable(),
  attempts: z.number().int().min(0),
  worker: z.string().nullable(),
  gpu: z.string().nullable(),
  result: JobResult.nullable(),
  error: JobError.nullable(),
  metadata: z.record(z.string(), z.string()).optional(),
  /** Batch lines only: the batch the job belongs to. Its final state is recorded in the batch once. */
  batch_id: z.string().optional(),
  /** Batch lines only: the line's `custom_id`. */
  custom_id: z.string().optional(),
  /**
   * While queued, in `GET /v1/jobs/:id` answers only (never stored): the job's estimated
   * place on its model's lane, 1 for the next to start (docs/api.md, "Queue position").
   */
  queue_position: z.number().int().min(1).optional(),
  /** With `queue_position`, when the lane finished jobs lately: the estimated start (Unix ms). */
  estimated_start_at: z.number().optional(),
});
export type JobRecord = z.infer<typeof JobRecord>;

/** What a new job's record is made from; the rest starts empty. */
export type NewJobRecord = Pick<JobRecord, "id" | "tenant" | "model" | "source" | "priority" | "created_at"> &
  Partial<Pick<JobRecord, "metadata" | "batch_id" | "custom_id">>;

/** A new job's record, status `queued`: not started, no worker, no result. Optional fields appear only when given. */
export function queuedJobRecord(o: NewJobRecord): JobRecord {
  return {
    id: o.id,
    object: "job",
    tenant: o.tenant,
    model: o.model,
    source: o.source,
    status: "queued",
    priority: o.priority,
    created_at: o.created_at,
    started_at: null,
    finished_at: null,
    attempts: 0,
    worker: null,
    gpu: null,
    result: null,
    error: null,
    ...(o.metadata !== undefined ? { metadata: o.metadata } : {}),
    ...(o.batch_id !== undefined ? { batch_id: o.batch_id } : {}),
    ...(o.custom_id !== undefined ? { custom_id: o.custom_id } : {}),
  };
}
