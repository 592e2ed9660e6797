import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { pino } from "pino";
import { FairQueue, RedisKeys, commandMethod, defineCommands, readTokensUsed } from "@corral/shared";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { UsageMeter } from "./usage-meter.js";

describe("UsageMeter on real Redis", () => {
  let url: string;
  let redis: Redis;
  const prefix = uniquePrefix("usage-meter");
  const keys = new RedisKeys(prefix);

  before(async () => {
    url = (await testRedis()).url;
    redis = new Redis(url, { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    redis?.disconnect();
    await cleanupPrefix(url, prefix);
  });

  /** The fair-claim counters, after each tenant starts at 1000 (settling skips a tenant with no counter). */
  const START = 1000;
  const reset = async () => {
    await redis.del(keys.fairCounters);
    await redis.hset(keys.fairCounters, "a", START, "b", START);
  };
  const usage = async () =>
    Object.fromEntries(
      [...(await new FairQueue(redis, keys).counters())]
        .filter(([, counter]) => counter !== START)
        .map(([tenant, counter]) => [tenant, counter - START]),
    );

  test("sums fair-claim settlements per tenant and writes them once per interval", async () => {
    await reset();
    const meter = new UsageMeter({ redis, keys, flushMs: 100, logger: pino({ level: "silent" }) });
    meter.settle("a", 100);
    meter.settle("a", 50);
    meter.settle("b", 30);
    meter.settle("b", -20);
    meter.settle("b", 0);
    meter.settle("b", Number.NaN);
    assert.deepEqual(await usage(), {}, "nothing is written before the interval");
    for (let i = 0; i < 50 && Object.keys(await usage()).length === 0; i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    const written = await usage();
    assert.ok(Math.abs(written.a! - 150) < 0.1 && Math.abs(written.b! - 10) < 0.1, JSON.stringify(written));
    await meter.close();
  });

  test("a failed write keeps the settlements; the next write adds them; close writes what is left", async () => {
    await reset();
    // Redis refuses the first write (as when the connection is down), then works again.
    let refuse = true;
    const flaky = Object.create(defineCommands(redis)) as Redis;
    const charge = commandMethod("settleFair");
    const scripted = redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    (flaky as unknown as typeof scripted)[charge] = (...args: unknown[]) => {
      if (refuse) {
        refuse = false;
        return Promise.reject(new Error("Connection is closed."));
      }
      return scripted[charge]!.apply(redis, args);
    };
    const warnings: string[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => void warnings.push(line) });
    const meter = new UsageMeter({ redis: flaky, keys, flushMs: 60_000, logger });
    meter.settle("a", 40);
    await meter.flush();
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /could not settle fair-claim charges/);
    assert.deepEqual(await usage(), {});
    meter.settle("a", 2);
    await meter.close();
    assert.ok(Math.abs((await usage()).a! - 42) < 0.1);
    meter.settle("a", 1000);
    await meter.flush();
    assert.ok((await usage()).a! < 43, "settlements after close are ignored");
  });

  const tokens = async () => Object.fromEntries(await readTokensUsed(redis, keys, { now: Date.now() }));

  test("counts tokens per tenant for today; a failed count is kept on its own, so the settlement is not written twice", async () => {
    await reset();
    await redis.del(keys.tokensUsed(new Date().toISOString().slice(0, 10)));
    // The token count's MULTI fails once; the settle script goes through.
    let refuse = true;
    const flaky = Object.create(redis) as Redis;
    flaky.multi = ((...args: Parameters<Redis["multi"]>) => {
      const multi = redis.multi(...args);
      if (refuse) {
        refuse = false;
        multi.exec = () => Promise.reject(new Error("Connection is closed."));
      }
      return multi;
    }) as Redis["multi"];
    const warnings: string[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => void warnings.push(line) });
    const meter = new UsageMeter({ redis: flaky, keys, flushMs: 60_000, logger });
    meter.settle("a", 40);
    meter.countTokens("a", 30);
    meter.countTokens("b", 7);
    meter.countTokens("b", 0);
    meter.countTokens("b", Number.NaN);
    await meter.flush();
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /could not count tenant tokens/);
    assert.ok(Math.abs((await usage()).a! - 40) < 0.1, "the settlement was written");
    assert.deepEqual(await tokens(), {});
    meter.countTokens("a", 5);
    await meter.close();
    assert.deepEqual(await tokens(), { a: 35, b: 7 });
    assert.ok(Math.abs((await usage()).a! - 40) < 0.1, "the settlement was not written again");
  });
});
