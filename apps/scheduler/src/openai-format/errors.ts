import { ConflictError, CorralError, InvalidRequestError } from "@corral/shared";

/** An OpenAI field or value Corral accepts in the schema but cannot honour (tools, logprobs, images…). */
export class UnsupportedFeatureError extends InvalidRequestError {
  constructor(
    message: string,
    param: string,
    code: "unsupported_parameter" | "unsupported_value" = "unsupported_parameter",
  ) {
    super(message, param, code);
  }
}

/**
 * A job of the request was cancelled by someone else (`DELETE /v1/jobs/:id`, an operator)
 * before it finished. OpenAI has no finish_reason for this, so the request fails with a
 * 409 rather than passing a cut-off answer as complete.
 */
export class JobCancelledError extends ConflictError {
  readonly jobId: string;
  constructor(jobId: string) {
    super(`Job ${jobId} was cancelled before it finished.`, "job_cancelled");
    this.jobId = jobId;
  }
}

/** A job failed on its worker for a reason that is not the request's fault: a 500 naming the worker's error code. */
export class JobFailedError extends CorralError {
  override readonly name = "JobFailedError";
  readonly jobId: string;
  constructor(jobId: string, message: string, code: string) {
    super(`Job ${jobId} failed: ${message}`, { code });
    this.jobId = jobId;
  }
}
