import { randomBytes } from "node:crypto";
import { InvalidRequestError } from "@corral/shared";

/** What a batch id may look like: `batch_` and 1–64 letters, digits, '_' or '-'. */
export const BATCH_ID_PATTERN = /^batch_[A-Za-z0-9_-]{1,64}$/;

/** A new batch id: `batch_` and 24 hex characters (96 bits). */
export const newBatchId = (): string => `batch_${randomBytes(12).toString("hex")}`;

/** Throws a 400 naming `param` unless `id` looks like a batch id. */
export function assertBatchId(id: unknown, param = "batch_id"): asserts id is string {
  if (typeof id !== "string" || !BATCH_ID_PATTERN.test(id)) {
    throw new InvalidRequestError(
      `Invalid batch id: expected \`batch_\` and letters or digits.`,
      param,
      "invalid_batch_id",
    );
  }
}

/** The job id of a batch line: deterministic, so a resumed ingest queues the same jobs (BullMQ ignores known ids). */
export const lineJobId = (batchId: string, line: number): string => `${batchId}_${line}`;

/** The `id` of a line in the output and error files (`batch_req_…`). */
export const lineRequestId = (batchId: string, line: number): string =>
  `batch_req_${batchId.slice("batch_".length)}_${line}`;

/** Ids of the files a batch's finalizer writes: the same on every attempt, so a retried finalize overwrites. */
export const outputFileId = (batchId: string): string => `file-${batchId.slice("batch_".length)}-output`;
export const errorFileId = (batchId: string): string => `file-${batchId.slice("batch_".length)}-errors`;
/** The batch's own name for its input (a hard link), so deleting the input file does not break a running batch. */
export const inputCopyName = (batchId: string): string => `${batchId}.input.jsonl`;
