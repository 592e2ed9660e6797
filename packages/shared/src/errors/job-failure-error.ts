import type { JobErrorCode } from "./job-error-code.js";

/**
 * An error that fails a job, with the {@link JobErrorCode} its record stores. It carries
 * no HTTP status, type or param: the scheduler maps the code to its response.
 */
export class JobFailureError extends Error {
  override readonly name: string = "JobFailureError";
  readonly code: JobErrorCode;

  constructor(message: string, code: JobErrorCode, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}
