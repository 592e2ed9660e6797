import { z } from "zod";
import { InvalidRequestError, JobStatus } from "@corral/shared";
import { invalidRequestFromZod } from "../../http/zod-error.js";
import type { ListOptions } from "../../jobs/types.js";

/** Longest `?wait=` a client may ask for, in seconds. */
export const MAX_WAIT_SECONDS = 60;

const digits = (value: unknown): unknown =>
  typeof value === "string" && /^\d{1,6}$/.test(value) ? Number(value) : value;

const ListQuery = z.object({
  status: JobStatus.optional(),
  limit: z.preprocess(digits, z.number().int().min(1).max(100)).optional(),
  after: z.string().optional(),
});

/** `?status=&limit=&after=` of `GET /v1/jobs`, validated (each bad field is a 400 naming it). */
export function parseListQuery(query: unknown): ListOptions {
  const parsed = ListQuery.safeParse(query);
  if (!parsed.success) throw invalidRequestFromZod(parsed.error);
  const options: ListOptions = {};
  if (parsed.data.status !== undefined) options.status = parsed.data.status;
  if (parsed.data.limit !== undefined) options.limit = parsed.data.limit;
  if (parsed.data.after !== undefined) options.after = parsed.data.after;
  return options;
}

/** `?wait=N`: seconds to long-poll, 0 to 60 (decimals allowed); absent is 0. */
export function parseWait(value: unknown): number {
  if (value === undefined) return 0;
  if (typeof value === "string" && /^\d{1,2}(\.\d{1,3})?$/.test(value)) {
    const seconds = Number(value);
    if (seconds <= MAX_WAIT_SECONDS) return seconds;
  }
  throw new InvalidRequestError(
    `Invalid value for \`wait\`: expected a number of seconds from 0 to ${MAX_WAIT_SECONDS}.`,
    "wait",
  );
}
