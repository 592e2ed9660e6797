import { randomFillSync } from "node:crypto";
import { InvalidRequestError } from "@corral/shared";

/** What a job id may look like. Anything else is rejected before Redis is touched. */
export const JOB_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

const ID_BYTES = 18;
/** Random bytes drawn for this many ids at once: one CSPRNG call per 256 ids, not one per id. */
const POOL_IDS = 256;
const pool = Buffer.alloc(ID_BYTES * POOL_IDS);
let offset = pool.length;

/** A new job id: `job_` and 24 random URL-safe characters (144 bits from the CSPRNG). */
export function newJobId(): string {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const id = pool.toString("base64url", offset, offset + ID_BYTES);
  offset += ID_BYTES;
  return `job_${id}`;
}

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
