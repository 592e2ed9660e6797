import { z } from "zod";
import { JobResult, JobStatus } from "./job-record.js";

/**
 * Files and batches in OpenAI's Batch API shapes (the format vLLM's `run-batch` reads too).
 * The HTTP layer returns these objects as they are; the internal fields Corral needs
 * (tenant, line counts) live in the `Stored*` variants.
 */

/** What a file is for: an uploaded batch input, or a batch's output/error file. */
export const FilePurpose = z.enum(["batch", "batch_output"]);
export type FilePurpose = z.infer<typeof FilePurpose>;

/** OpenAI's file object (`GET /v1/files/:id`). */
export const FileObject = z.object({
  /** `file-` and random characters. */
  id: z.string(),
  object: z.literal("file"),
  bytes: z.number().int().min(0),
  /** Unix seconds. */
  created_at: z.number().int(),
  filename: z.string(),
  purpose: FilePurpose,
  /** Deprecated in OpenAI's API, still sent: a stored file is `processed`. */
  status: z.enum(["uploaded", "processed", "error"]),
  status_details: z.string().nullable(),
  expires_at: z.number().int().nullable(),
});
export type FileObject = z.infer<typeof FileObject>;

/** A file's metadata as Redis holds it: the file object plus its owner and line count. */
export const StoredFile = FileObject.extend({
  tenant: z.string(),
  /** Number of newline-terminated or final lines. */
  lines: z.number().int().min(0),
});
export type StoredFile = z.infer<typeof StoredFile>;

/** The endpoints a batch may target. */
export const BATCH_ENDPOINTS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"] as const;
export const BatchEndpoint = z.enum(BATCH_ENDPOINTS);
export type BatchEndpoint = z.infer<typeof BatchEndpoint>;

export const BatchStatus = z.enum([
  "validating",
  "failed",
  "in_progress",
  "finalizing",
  "completed",
  "expired",
  "cancelling",
  "cancelled",
]);
export type BatchStatus = z.infer<typeof BatchStatus>;

/** Statuses a batch never leaves. */
export const FINAL_BATCH_STATUSES: readonly BatchStatus[] = ["failed", "completed", "expired", "cancelled"];
export const isFinalBatchStatus = (status: BatchStatus): boolean => FINAL_BATCH_STATUSES.includes(status);

/** One structural fault of an input file (the batch fails with a list of these). */
export const BatchError = z.object({
  code: z.string(),
  message: z.string(),
  param: z.string().nullable(),
  /** 1-based line of the input file. */
  line: z.number().int().nullable(),
});
export type BatchError = z.infer<typeof BatchError>;

export const BatchRequestCounts = z.object({
  total: z.number().int().min(0),
  completed: z.number().int().min(0),
  failed: z.number().int().min(0),
});
export type BatchRequestCounts = z.infer<typeof BatchRequestCounts>;

/** Metadata on batches (OpenAI's limits: 16 keys, 64-character keys, 512-character values). */
export const BatchMetadata = z
  .record(z.string().max(64), z.string().max(512))
  .refine((m) => Object.keys(m).length <= 16, { message: "at most 16 metadata keys" });

/** OpenAI's batch object (`GET /v1/batches/:id`). Timestamps are Unix seconds. */
export const BatchObject = z.object({
  /** `batch_` and random characters. */
  id: z.string(),
  object: z.literal("batch"),
  endpoint: BatchEndpoint,
  errors: z.object({ object: z.literal("list"), data: z.array(BatchError) }).nullable(),
  input_file_id: z.string(),
  completion_window: z.string(),
  status: BatchStatus,
  output_file_id: z.string().nullable(),
  error_file_id: z.string().nullable(),
  created_at: z.number().int(),
  in_progress_at: z.number().int().nullable(),
  expires_at: z.number().int().nullable(),
  finalizing_at: z.number().int().nullable(),
  completed_at: z.number().int().nullable(),
  failed_at: z.number().int().nullable(),
  expired_at: z.number().int().nullable(),
  cancelling_at: z.number().int().nullable(),
  cancelled_at: z.number().int().nullable(),
  request_counts: BatchRequestCounts,
  metadata: z.record(z.string(), z.string()).nullable(),
});
export type BatchObject = z.infer<typeof BatchObject>;

/** A batch as Redis holds it: the object (its `request_counts` live in a counters hash) plus its owner. */
export const StoredBatch = BatchObject.extend({
  tenant: z.string(),
});
export type StoredBatch = z.infer<typeof StoredBatch>;

/** `POST /v1/batches`. */
export const BatchCreateRequest = z
  .object({
    input_file_id: z.string().min(1).max(128),
    endpoint: BatchEndpoint,
    completion_window: z.literal("24h"),
    metadata: BatchMetadata.nullish(),
  })
  .strict();
export type BatchCreateRequest = z.infer<typeof BatchCreateRequest>;

/** One line of a batch input file. */
export const BatchRequestLine = z.object({
  custom_id: z.string().min(1).max(512),
  method: z.literal("POST"),
  url: z.string(),
  body: z.record(z.string(), z.unknown()),
});
export type BatchRequestLine = z.infer<typeof BatchRequestLine>;

/** One line of a batch output or error file. */
export const BatchOutputLine = z.object({
  /** `batch_req_` and the line's job id. */
  id: z.string(),
  custom_id: z.string(),
  response: z
    .object({
      status_code: z.number().int(),
      request_id: z.string(),
      body: z.unknown(),
    })
    .nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
});
export type BatchOutputLine = z.infer<typeof BatchOutputLine>;

/**
 * The result of one batch line, kept under its `custom_id` in the batch's results hash
 * until the batch finalizes. Written exactly once: by `JobRecords.transition` (a Lua
 * script) when the line's job goes final, or by the ingest for a line whose request is
 * invalid (then `job_id` is null and `status_code` says why: 400, 404…).
 */
export const BatchLineResult = z.object({
  job_id: z.string().nullable(),
  status: JobStatus,
  model: z.string().nullable(),
  /** Unix ms. */
  finished_at: z.number().nullable(),
  result: JobResult.nullable(),
  /**
   * The job's error (its `code` a job error code) or, for a line whose request is invalid,
   * the error the online endpoint would have answered with (`invalid_value`, `model_not_found`…).
   */
  error: z.object({ message: z.string(), code: z.string() }).nullable(),
  /** Per-line faults only: the HTTP status, error type and field the online endpoint would have answered with. */
  status_code: z.number().int().optional(),
  type: z.string().optional(),
  param: z.string().nullable().optional(),
});
export type BatchLineResult = z.infer<typeof BatchLineResult>;

/** Where a batch line's final status is counted in the batch's counters hash. */
export const BATCH_COUNT_FIELD = {
  succeeded: "completed",
  failed: "failed",
  cancelled: "cancelled",
} as const;
