import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { pino } from "pino";
import { RedisKeys } from "@corral/shared";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { InteractiveLeases } from "./interactive-leases.js";

describe("InteractiveLeases on real Redis", () => {
  let url: string;
  let redis: Redis;
  const prefix = uniquePrefix("leases");
  const keys = new RedisKeys(prefix);
  before(async () => {
    url = (await testRedis()).url;
    redis = new Redis(url);
  });
  after(async () => {
    redis?.disconnect();
    await cleanupPrefix(url, prefix);
  });

  test("takes leases at once, renews them while held, prunes long-expired ones, and drops them on release", async () => {
    let now = 1_800_000_000_000;
    const leases = new InteractiveLeases({
      redis,
      keys,
      logger: pino({ level: "silent" }),
      leaseMs: 1200,
      clock: () => now,
    });
    try {
      await redis.zadd(keys.interactiveLeases, now - 5000, "left-by-a-dead-scheduler");
      await leases.hold(["a", "b"]);
      assert.equal(Number(await redis.zscore(keys.interactiveLeases, "a")), now + 1200);
      now += 400;
      await new Promise((resolve) => setTimeout(resolve, 900));
      assert.equal(Number(await redis.zscore(keys.interactiveLeases, "b")), now + 1200, "renewed");
      assert.equal(await redis.zscore(keys.interactiveLeases, "left-by-a-dead-scheduler"), null, "pruned");
      leases.release(["a", "b"]);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(await redis.zcard(keys.interactiveLeases), 0);
    } finally {
      await leases.close();
    }
  });
});
