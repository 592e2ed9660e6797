import { InvalidRequestError, NotFoundError, type CorralError, type JobError, type JobRecord } from "@corral/shared";
import { JobCancelledError, JobFailedError } from "./errors.js";
import { INPUT_FIELD, JOB_ERROR_RESPONSES, inputField, type JobKind } from "./job-error-responses.js";

/**
 * The error a request gets for a job that did not succeed: what {@link JOB_ERROR_RESPONSES}
 * says for the job's error code (a 400 naming the field for failures the request caused,
 * a 404 naming `model` when the job's model left the catalog, else a 500 carrying the
 * worker's code); a job cancelled by someone else is a 409 `job_cancelled`.
 */
export function jobOutcomeError(record: JobRecord, kind: JobKind): CorralError {
  if (record.status === "cancelled") return new JobCancelledError(record.id);
  const error: JobError = record.error ?? { message: "the job failed without an error message", code: "worker_error" };
  const response = JOB_ERROR_RESPONSES[error.code];
  if (response.status === 500) return new JobFailedError(record.id, error.message, error.code);
  if (response.status === 404) return new NotFoundError(error.message, response.param, response.code ?? error.code);
  const param = response.param === INPUT_FIELD ? inputField(kind) : response.param;
  return new InvalidRequestError(error.message, param, response.code ?? error.code);
}
