import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../test/support/redis.js";
import { chargeUsage, decayUsage, fairShareFactors, fairShareLevel, parseUsage, readUsage } from "./fair-share.js";
import { RedisKeys } from "./keys.js";

const HOUR = 3_600_000;
const close = (actual: number | undefined, expected: number, what: string) =>
  assert.ok(actual !== undefined && Math.abs(actual - expected) < 1e-6, `${what}: ${actual} ≠ ${expected}`);

describe("fair-share factors", () => {
  test("nobody used anything: every factor is 1", () => {
    const factors = fairShareFactors(new Map(), new Map(), ["a", "b"]);
    assert.deepEqual(
      [...factors],
      [
        ["a", 1],
        ["b", 1],
      ],
    );
  });

  test("equal shares: F = 2^(-used/share); exactly one's share gives 0.5", () => {
    const factors = fairShareFactors(
      new Map([
        ["a", 300],
        ["b", 100],
      ]),
      new Map(),
    );
    close(factors.get("a"), 2 ** -1.5, "a used 3/4 against a share of 1/2");
    close(factors.get("b"), 2 ** -0.5, "b used 1/4 against 1/2");
    const even = fairShareFactors(
      new Map([
        ["a", 50],
        ["b", 50],
      ]),
      new Map(),
    );
    close(even.get("a"), 0.5, "a used exactly its share");
  });

  test("shares weigh usage, and idle tenants count in the total of shares", () => {
    const weighted = fairShareFactors(
      new Map([
        ["a", 300],
        ["b", 100],
      ]),
      new Map([["a", 3]]),
    );
    close(weighted.get("a"), 0.5, "a used 3/4 with a share of 3/4");
    close(weighted.get("b"), 0.5, "b used 1/4 with a share of 1/4");
    const withIdle = fairShareFactors(new Map([["a", 100]]), new Map(), ["a", "idle1", "idle2", "idle3"]);
    close(withIdle.get("a"), 2 ** -4, "a used everything with a share of 1/4");
    assert.equal(withIdle.get("idle1"), 1);
  });

  test("the level is pushed back by weight × (1 − F), rounded, within 1–100", () => {
    assert.equal(fairShareLevel(50, 1, 50), 50);
    assert.equal(fairShareLevel(50, 0.5, 50), 75);
    assert.equal(fairShareLevel(50, 0, 50), 100);
    assert.equal(fairShareLevel(90, 0.2, 50), 100);
    assert.equal(fairShareLevel(1, 0.5, 0), 1);
    assert.equal(fairShareLevel(10, 0.7, 50), 25);
  });

  test("usage decays by half every half-life", () => {
    close(decayUsage({ value: 1000, at: 0 }, HOUR, HOUR), 500, "one half-life");
    close(decayUsage({ value: 1000, at: 0 }, 3 * HOUR, HOUR), 125, "three");
    close(decayUsage({ value: 1000, at: HOUR }, 0, HOUR), 1000, "a clock behind the write does not grow it");
    assert.deepEqual([...parseUsage({ a: "12.5:1000", b: "junk", c: "-1:5" })], [["a", { value: 12.5, at: 1000 }]]);
  });
});

describe("usage in Redis", () => {
  let url: string;
  let redis: Redis;
  const prefix = uniquePrefix("usage");
  const keys = new RedisKeys(prefix);

  before(async () => {
    url = (await testRedis()).url;
    redis = new Redis(url, { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    redis?.disconnect();
    await cleanupPrefix(url, prefix);
  });

  test("charges add up per tenant, decayed to each write; reads decay to now", async () => {
    const t0 = 1_800_000_000_000;
    await chargeUsage(
      redis,
      keys,
      new Map([
        ["a", 1000],
        ["b", 10],
      ]),
      { now: t0, halfLifeMs: HOUR },
    );
    await chargeUsage(redis, keys, new Map([["a", 500]]), { now: t0 + HOUR, halfLifeMs: HOUR });
    const atWrite = await readUsage(redis, keys, { now: t0 + HOUR, halfLifeMs: HOUR });
    close(atWrite.get("a"), 1000 * 0.5 + 500, "a at its second write");
    close(atWrite.get("b"), 5, "b, decayed from its one write");
    const later = await readUsage(redis, keys, { now: t0 + 2 * HOUR, halfLifeMs: HOUR });
    close(later.get("a"), 500, "a an hour later");
    await chargeUsage(redis, keys, new Map(), { now: t0, halfLifeMs: HOUR });
    assert.equal(await redis.hlen(keys.usage), 2);
  });
});
