import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { RedisKeys, utcDay } from "@corral/shared";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { AudioBudget } from "./audio-budget.js";
import { AudioBudgetExceededError } from "./errors.js";

const NOON = Date.UTC(2026, 10, 29, 12, 0, 0);

describe("AudioBudget on real Redis", () => {
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

  const budgetOf = (budgets: Record<string, number>, clock: () => number = () => NOON) => {
    const prefix = uniquePrefix("audio-budget");
    prefixes.push(prefix);
    const keys = new RedisKeys(prefix);
    return { keys, budget: new AudioBudget({ redis, keys, budgets: new Map(Object.entries(budgets)), clock }) };
  };

  test("concurrent files cannot pass a budget together: of ten 10 s files under 35 s, exactly three are counted", async () => {
    const { budget } = budgetOf({ lab: 35 });
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => budget.reserve("lab", 10)));
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 3);
    for (const r of results.filter((r) => r.status === "rejected"))
      assert.ok((r as PromiseRejectedResult).reason instanceof AudioBudgetExceededError);
    assert.equal(await budget.usedToday("lab"), 30);
  });

  test("the refusal names the setting, is 429 insufficient_quota, and retries after midnight UTC", async () => {
    const { budget } = budgetOf({ "*": 5 });
    await assert.rejects(budget.reserve("guest", 6), (error: unknown) => {
      assert.ok(error instanceof AudioBudgetExceededError);
      assert.equal(error.status, 429);
      assert.equal(error.type, "insufficient_quota");
      assert.equal(error.retryAfterSeconds, 12 * 3600);
      assert.match(error.message, /CORRAL_TENANT_AUDIO_SECONDS_PER_DAY/);
      return true;
    });
    assert.equal(await budget.usedToday("guest"), 0);
  });

  test("a release gives the seconds back once; tenants without a budget are counted too, per UTC day", async () => {
    let now = NOON;
    const { budget, keys } = budgetOf({ lab: 20 }, () => now);
    const release = await budget.reserve("lab", 12.5);
    await budget.reserve("free", 1000);
    assert.deepEqual(
      await budget.allUsedToday(),
      new Map([
        ["lab", 12.5],
        ["free", 1000],
      ]),
    );
    await release();
    await release();
    assert.equal(await budget.usedToday("lab"), 0);
    assert.ok((await redis.ttl(keys.audioUsed(utcDay(NOON)))) > 24 * 3600);
    now += 24 * 3600 * 1000;
    assert.equal(await budget.usedToday("free"), 0, "a new day starts from 0");
    assert.deepEqual([...budget.named], [["lab", 20]]);
  });
});
