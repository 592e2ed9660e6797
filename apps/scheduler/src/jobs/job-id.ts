import { randomBytes } from "node:crypto";
import { InvalidRequestError } from "@corral/shared";

/** What a job id may look like. Anything else is rejected before Redis is touched. */
export const JOB_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** A new job id: `job_` and 24 random URL-safe characters (144 bits). */
export const newJobId = (): string => `job_${randomBytes(18).toString("base64url")}`;

/** Throws a 400 naming `param` unless `id` looks like a job id. */
export function assertJobId(id: unknown, param = "id"): asserts id is string {
  if (typeof id !== "string" || !JOB_ID_PATTERN.test(id)) {
    throw new InvalidRequestError(
      `Invalid job id: expected 1-64 letters, digits, '_' or '-' (like job_…).`,
      param,
      "invalid_job_id",
    );
  }
}
