import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { RedisKeys } from "@corral/shared";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { LeaseCheck } from "./lease-check.js";

const LEASE_MS = 10_000;
const NOW = 1_800_000_000_000;

describe("LeaseCheck on real Redis", () => {
  let url: string;
  let redis: Redis;
  const prefix = uniquePrefix("lease-check");
  const keys = new RedisKeys(prefix);
  before(async () => {
    url = (await testRedis()).url;
    redis = new Redis(url);
  });
  after(async () => {
    redis?.disconnect();
    await cleanupPrefix(url, prefix);
  });

  test("names the jobs whose lease ran out or that never got one within a lease, and no others", async () => {
    await redis.zadd(keys.interactiveLeases, NOW + 5000, "held", NOW - 1, "expired");
    const check = new LeaseCheck({ redis, keys, leaseMs: LEASE_MS, now: () => NOW });
    const expired = await check.expired([
      { id: "held", createdAt: NOW - 60_000 },
      { id: "expired", createdAt: NOW - 60_000 },
      { id: "new-without-lease", createdAt: NOW - 1000 },
      { id: "old-without-lease", createdAt: NOW - LEASE_MS - 1 },
    ]);
    assert.deepEqual(expired, ["expired", "old-without-lease"]);
    assert.deepEqual(await check.expired([]), []);
  });
});
