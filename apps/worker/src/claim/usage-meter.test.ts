import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { pino } from "pino";
import { RedisKeys, commandMethod, defineCommands, readTokensUsed, readUsage } from "@corral/shared";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { UsageMeter } from "./usage-meter.js";

const HOUR = 3_600_000;

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

  const usage = async () => Object.fromEntries(await readUsage(redis, keys, { now: Date.now(), halfLifeMs: HOUR }));

  test("sums charges per tenant and writes them once per interval", async () => {
    await redis.del(keys.usage);
    const meter = new UsageMeter({ redis, keys, halfLifeMs: HOUR, flushMs: 100, logger: pino({ level: "silent" }) });
    meter.charge("a", 100);
    meter.charge("a", 50);
    meter.charge("b", 10);
    meter.charge("b", 0);
    meter.charge("b", Number.NaN);
    assert.deepEqual(await usage(), {}, "nothing is written before the interval");
    for (let i = 0; i < 50 && Object.keys(await usage()).length === 0; i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    const written = await usage();
    assert.ok(Math.abs(written.a! - 150) < 0.1 && Math.abs(written.b! - 10) < 0.1, JSON.stringify(written));
    await meter.close();
  });

  test("a failed write keeps the charges; the next write adds them; close writes what is left", async () => {
    await redis.del(keys.usage);
    // Redis refuses the first write (as when the connection is down), then works again.
    let refuse = true;
    const flaky = Object.create(defineCommands(redis)) as Redis;
    const charge = commandMethod("chargeUsage");
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
    const meter = new UsageMeter({ redis: flaky, keys, halfLifeMs: HOUR, flushMs: 60_000, logger });
    meter.charge("a", 40);
    await meter.flush();
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /could not write tenant usage/);
    assert.deepEqual(await usage(), {});
    meter.charge("a", 2);
    await meter.close();
    assert.ok(Math.abs((await usage()).a! - 42) < 0.1);
    meter.charge("a", 1000);
    await meter.flush();
    assert.ok((await usage()).a! < 43, "charges after close are ignored");
  });

  const tokens = async () => Object.fromEntries(await readTokensUsed(redis, keys, { now: Date.now() }));

  test("counts tokens per tenant for today; a failed count is kept on its own, so the usage is not written twice", async () => {
    await redis.del(keys.usage);
    await redis.del(keys.tokensUsed(new Date().toISOString().slice(0, 10)));
    // The token count's MULTI fails once; the usage script goes through.
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
    const meter = new UsageMeter({ redis: flaky, keys, halfLifeMs: HOUR, flushMs: 60_000, logger });
    meter.charge("a", 40);
    meter.countTokens("a", 30);
    meter.countTokens("b", 7);
    meter.countTokens("b", 0);
    meter.countTokens("b", Number.NaN);
    await meter.flush();
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /could not count tenant tokens/);
    assert.ok(Math.abs((await usage()).a! - 40) < 0.1, "the usage was written");
    assert.deepEqual(await tokens(), {});
    meter.countTokens("a", 5);
    await meter.close();
    assert.deepEqual(await tokens(), { a: 35, b: 7 });
    assert.ok(Math.abs((await usage()).a! - 40) < 0.1, "the usage was not written again");
  });
});
