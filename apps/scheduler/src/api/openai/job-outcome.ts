import { InvalidRequestError, type CorralError, type JobRecord } from "@corral/shared";
import { JobCancelledError, JobFailedError } from "./errors.js";

/**
 * The error a request gets for a job that did not succeed. Failures caused by the request
 * (a schema the grammar cannot enforce, a prompt longer than the context, an unusable
 * input) are 400s naming the field; others are 500s carrying the worker's error code; a
 * job cancelled by someone else is a 409 `job_cancelled`.
 */
export function jobOutcomeError(record: JobRecord, kind: "chat" | "completion" | "embedding"): CorralError {
  if (record.status === "cancelled") return new JobCancelledError(record.id);
  const error = record.error ?? { message: "the job failed without an error message", code: "worker_error" };
  switch (error.code) {
    case "unsupported_schema":
      return new InvalidRequestError(error.message, "response_format.json_schema.schema", "unsupported_schema");
    case "context_length_exceeded":
      return new InvalidRequestError(error.message, inputParam(kind), "context_length_exceeded");
    case "invalid_job":
      return new InvalidRequestError(error.message, inputParam(kind), "invalid_value");
    default:
      return new JobFailedError(record.id, error.message, error.code);
  }
}

const inputParam = (kind: "chat" | "completion" | "embedding"): string =>
  kind === "chat" ? "messages" : kind === "completion" ? "prompt" : "input";
