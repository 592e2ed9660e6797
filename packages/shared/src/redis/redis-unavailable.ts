/**
 * Whether `error` says the Redis connection failed rather than that Redis refused the
 * command: ioredis's `MaxRetriesPerRequestError` (the connection stayed down through the
 * retries), its command timeout (`commandTimeout`), a closed connection, an offline queue
 * that is off, or a socket error. A Redis error reply (`ReplyError`: WRONGTYPE, NOSCRIPT,
 * OOM…) is not one: that is a bug or a full Redis, and stays a 500.
 *
 * ioredis raises most of these as plain `Error`s, so this is the one place that reads
 * their messages; everything else branches on the result.
 */
export function isRedisUnavailable(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e.name === "MaxRetriesPerRequestError") return true;
    if (e.name === "ReplyError") return false;
    if (REDIS_CONNECTION_MESSAGES.some((m) => e instanceof Error && e.message.startsWith(m))) return true;
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== undefined && SOCKET_ERROR_CODES.has(code)) return true;
  }
  return false;
}

const REDIS_CONNECTION_MESSAGES = [
  "Command timed out",
  "Connection is closed",
  "Stream isn't writeable",
  "Reached the max retries per request limit",
];

const SOCKET_ERROR_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "ENOTFOUND", "EHOSTUNREACH"]);

/** What `Retry-After` says on a 503 for an unreachable Redis. */
export const REDIS_RETRY_AFTER_SECONDS = 5;
