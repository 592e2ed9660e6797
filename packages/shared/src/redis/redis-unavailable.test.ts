import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ReplyError } from "ioredis";
import { isRedisUnavailable } from "./redis-unavailable.js";

describe("isRedisUnavailable", () => {
  test("is true for ioredis's connection failures, also when wrapped", () => {
    const maxRetries = new Error("Reached the max retries per request limit (which is 3).");
    maxRetries.name = "MaxRetriesPerRequestError";
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
    for (const error of [
      new Error("Command timed out"),
      new Error("Connection is closed."),
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
      maxRetries,
      refused,
      new Error("submitting failed", { cause: new Error("Command timed out") }),
    ]) {
      assert.equal(isRedisUnavailable(error), true, error.message);
    }
  });

  test("is false for Redis error replies and other errors", () => {
    assert.equal(isRedisUnavailable(new ReplyError("WRONGTYPE Operation against a key")), false);
    assert.equal(isRedisUnavailable(new Error("boom")), false);
    assert.equal(isRedisUnavailable("Command timed out"), false);
    assert.equal(isRedisUnavailable(null), false);
  });
});
