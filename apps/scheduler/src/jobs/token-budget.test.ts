import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { pino } from "pino";
import { RedisKeys, TokenBudgetExceededError, addTokensUsed, nextUtcMidnight, utcDay } from "@corral/shared";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { TokenBudget } from "./token-budget.js";

const NOON = Date.UTC(2026, 10, 29, 12, 0, 0);

test("utcDay and nextUtcMidnight follow the UTC calendar", () => {
  assert.equal(utcDay(NOON), "2026-11-29");
  assert.equal(utcDay(Date.UTC(2026, 11, 31, 23, 59, 59, 999)), "2026-12-31");
  assert.equal(nextUtcMidnight(NOON), Date.UTC(2026, 10, 30));
  assert.equal(nextUtcMidnight(Date.UTC(2026, 11, 31, 23, 59)), Date.UTC(2027, 0, 1));
  assert.equal(nextUtcMidnight(Date.UTC(2026, 10, 30)), Date.UTC(2026, 11, 1), "midnight itself starts a new day");
});

describe("TokenBudget on real Redis", () => {
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

  /** A TokenBudget over fresh keys where `used` tokens were counted at `at`, read at `clock()`. */
  const withUsed = async (budgets: Record<string, number>, used: Record<string, number>, clock: () => number) => {
    const prefix = uniquePrefix("token-budget");
    prefixes.push(prefix);
    const keys = new RedisKeys(prefix);
    await addTokensUsed(redis, keys, new Map(Object.entries(used)), { now: NOON });
    const budget = new TokenBudget({
      redis,
      keys,
      budgets: new Map(Object.entries(budgets)),
      logger: pino({ level: "silent" }),
      clock,
    });
    await budget.refresh();
    return { budget, keys };
  };

  test("admits a tenant under its budget and refuses one at it, with the counts, the reset time and Retry-After", async () => {
    const { budget } = await withUsed({ a: 1000, b: 1000 }, { a: 999, b: 1000 }, () => NOON);
    budget.admit("a");
    let error: unknown = null;
    try {
      budget.admit("b");
    } catch (caught) {
      error = caught;
    }
    assert.ok(error instanceof TokenBudgetExceededError, String(error));
    assert.equal(error.status, 429);
    assert.equal(error.type, "insufficient_quota");
    assert.equal(error.code, "token_budget_exceeded");
    assert.match(error.message, /Tenant b has used 1000 of its 1000 tokens for 2026-11-29 \(UTC\)/);
    assert.match(error.message, /resets at 2026-11-30T00:00:00\.000Z/);
    assert.equal(error.retryAfterSeconds, 12 * 3600);
  });

  test("`*` is every other tenant's budget; a tenant not named without `*` has none", async () => {
    const withDefault = await withUsed({ a: 10, "*": 100 }, { a: 5, c: 100, d: 50 }, () => NOON);
    withDefault.budget.admit("a");
    assert.throws(() => withDefault.budget.admit("c"), TokenBudgetExceededError);
    withDefault.budget.admit("d");
    assert.deepEqual((await withDefault.budget.current()).map((b) => [b.tenant, b.used, b.budget]).sort(), [
      ["a", 5, 10],
      ["c", 100, 100],
      ["d", 50, 100],
    ]);
    const named = await withUsed({ a: 10 }, { a: 5, c: 1_000_000 }, () => NOON);
    assert.equal(named.budget.budgetOf("c"), null);
    named.budget.admit("c");
    assert.deepEqual(
      (await named.budget.current()).map((b) => b.tenant),
      ["a"],
    );
  });

  test("counts are read again after refreshMs, and yesterday's count does not hold against today", async () => {
    let now = NOON;
    const { budget, keys } = await withUsed({ a: 100 }, { a: 100 }, () => now);
    assert.throws(() => budget.admit("a"), TokenBudgetExceededError);
    // A new day: the last read was yesterday's, so it no longer counts, and a read starts.
    now = Date.UTC(2026, 10, 30, 0, 0, 1);
    budget.admit("a");
    await addTokensUsed(redis, keys, new Map([["a", 100]]), { now });
    budget.admit("a");
    now += 5000;
    budget.admit("a"); // starts the read; this call still uses the last counts
    await budget.refresh();
    assert.throws(() => budget.admit("a"), /used 100 of its 100 tokens for 2026-11-30/);
  });

  test("a failed read keeps the last counts and is logged", async () => {
    const prefix = uniquePrefix("token-budget");
    prefixes.push(prefix);
    const keys = new RedisKeys(prefix);
    await addTokensUsed(redis, keys, new Map([["a", 100]]), { now: NOON });
    let fail = false;
    const flaky = Object.create(redis) as Redis;
    flaky.hgetall = ((...args: Parameters<Redis["hgetall"]>) =>
      fail ? Promise.reject(new Error("Connection is closed.")) : redis.hgetall(...args)) as Redis["hgetall"];
    const warnings: string[] = [];
    const budget = new TokenBudget({
      redis: flaky,
      keys,
      budgets: new Map([["a", 100]]),
      logger: pino({ level: "warn" }, { write: (line: string) => void warnings.push(line) }),
      clock: () => NOON,
    });
    await budget.refresh();
    fail = true;
    await budget.refresh();
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /could not read tenants' tokens used today/);
    assert.throws(() => budget.admit("a"), TokenBudgetExceededError);
  });

  test("with no budgets it admits everyone and reads nothing", async () => {
    let reads = 0;
    const counting = Object.create(redis) as Redis;
    counting.hgetall = ((...args: Parameters<Redis["hgetall"]>) => {
      reads++;
      return redis.hgetall(...args);
    }) as Redis["hgetall"];
    const budget = new TokenBudget({
      redis: counting,
      keys: new RedisKeys(uniquePrefix("token-budget")),
      budgets: new Map(),
      logger: pino({ level: "silent" }),
    });
    assert.equal(budget.enabled, false);
    for (let i = 0; i < 10; i++) budget.admit("anyone");
    assert.equal(reads, 0);
  });
});
