import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { pino } from "pino";
import { RedisKeys, chargeUsage } from "@corral/shared";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { FairShare } from "./fair-share.js";

const HOUR = 3_600_000;

describe("FairShare on real Redis", () => {
  let url: string;
  let redis: Redis;
  const prefixes: string[] = [];

  before(async () => {
    url = (await testRedis()).url;
    redis = new Redis(url, { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    for (const prefix of prefixes) await cleanupPrefix(url, prefix);
    redis?.disconnect();
  });

  /** A FairShare over fresh keys holding `usage` (ms per tenant, charged now). */
  const withUsage = async (usage: Record<string, number>, tenants: string[], weight = 50) => {
    const prefix = uniquePrefix("fairshare-unit");
    prefixes.push(prefix);
    const keys = new RedisKeys(prefix);
    await chargeUsage(redis, keys, new Map(Object.entries(usage)), { now: Date.now(), halfLifeMs: HOUR });
    const fairShare = new FairShare({
      redis,
      keys,
      shares: new Map(),
      tenants,
      weight,
      halfLifeMs: HOUR,
      logger: pino({ level: "silent" }),
    });
    await fairShare.refresh();
    return fairShare;
  };

  test("a lone tenant's levels are left as they are, however much it used", async () => {
    const fairShare = await withUsage({ default: 10 * HOUR }, ["default"]);
    assert.equal(fairShare.factor("default"), 0.5);
    for (const level of [1, 50, 80, 100]) assert.equal(fairShare.level("default", level), level);
  });

  test("levels are pushed back relative to the tenant that used least against its share", async () => {
    // a used 3/4, b 1/4, equal shares: F(a) = 2^-1.5, F(b) = 2^-0.5; a is pushed back
    // round(50 × (1 − 2^-1)) = 25 levels, b none.
    const fairShare = await withUsage({ a: 3000, b: 1000 }, ["a", "b"]);
    assert.equal(fairShare.level("b", 50), 50);
    assert.equal(fairShare.level("a", 50), 75);
    // A tenant with a key that used nothing deserves most: then b is pushed back too.
    const withIdle = await withUsage({ a: 3000, b: 1000 }, ["a", "b", "idle"]);
    assert.equal(withIdle.level("idle", 50), 50);
    assert.ok(withIdle.level("b", 50) > 50 && withIdle.level("a", 50) > withIdle.level("b", 50));
  });

  test("weight 0 leaves every level as asked", async () => {
    const fairShare = await withUsage({ a: 3000 }, ["a", "b"], 0);
    assert.equal(fairShare.enabled, false);
    assert.equal(fairShare.level("a", 50), 50);
  });

  test("a tenant nothing was read for yet counts as having used nothing", async () => {
    const fairShare = await withUsage({}, ["a"]);
    assert.equal(fairShare.factor("new-tenant"), 1);
    assert.equal(fairShare.level("new-tenant", 50), 50);
  });
});
