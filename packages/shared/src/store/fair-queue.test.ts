import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { RedisKeys } from "../keys.js";
import { FairQueue, type HeldJob } from "./fair-queue.js";

describe("FairQueue (holdFair / releaseFair / settleFair) against real Redis", () => {
  let url: string;
  let redis: Redis;
  let prefix: string;
  let keys: RedisKeys;
  let fair: FairQueue;
  const lane = "lane-m";
  let next = 0;

  before(async () => {
    url = (await testRedis()).url;
    redis = new Redis(url);
  });
  beforeEach(() => {
    prefix = uniquePrefix("fair");
    keys = new RedisKeys(prefix);
    fair = new FairQueue(redis, keys, { creditTokens: 100 });
  });
  after(async () => {
    await cleanupPrefix(url, "fair");
    redis.disconnect();
  });

  const delayed = () => `${keys.prefix}:${lane}:delayed`;
  const wait = () => `${keys.prefix}:${lane}:wait`;

  /** Adds jobs to the lane's delayed set (as the BullMQ add does) and holds them. */
  async function submit(tenant: string, count: number, extra: Partial<HeldJob> = {}, now = 1000): Promise<string[]> {
    const jobs: HeldJob[] = Array.from({ length: count }, () => ({
      id: `${tenant}-${++next}`,
      tenant,
      weight: 1,
      priority: 150,
      createdAt: now + next,
      cost: 10,
      ...extra,
    }));
    for (const job of jobs) await redis.zadd(delayed(), 1e15, job.id);
    assert.equal(await fair.hold(lane, jobs, now), count);
    return jobs.map((job) => job.id);
  }

  /** Releases `n` jobs in one call, a second after the last call (the floor is refreshed at most every 250 ms). */
  let clock = 2000;
  const releaseAll = async (n: number) => (await fair.release(lane, n, (clock += 1000))).map((job) => job.tenant);

  test("a released job moves from the delayed set to the back of the wait list, once", async () => {
    const [id] = await submit("a", 1);
    const released = await fair.release(lane, 1, 2000);
    assert.deepEqual(released, [{ id, tenant: "a", charged: 10 }]);
    assert.equal(await redis.zscore(delayed(), id!), null);
    assert.deepEqual(await redis.lrange(wait(), 0, -1), [id]);
    assert.deepEqual(
      await fair.releaseForClaim(lane, 1, 2000),
      { released: [], ready: 1 },
      "nothing is released twice; the job waits to be taken",
    );
    assert.deepEqual((await fair.summaries([lane]))[0], {
      lane,
      held: 0,
      band: null,
      since: null,
      served: 2000,
    });
  });

  test("backlogged tenants alternate: the lowest counter goes next, ties to the older head", async () => {
    await submit("a", 4);
    await submit("b", 4);
    assert.deepEqual(await releaseAll(8), ["a", "b", "a", "b", "a", "b", "a", "b"]);
  });

  test("weights: service is shared in proportion (1:2:4)", async () => {
    await submit("w1", 70, { weight: 1 });
    await submit("w2", 70, { weight: 2 });
    await submit("w4", 70, { weight: 4 });
    const served = await releaseAll(70);
    const count = (t: string) => served.filter((s) => s === t).length;
    assert.equal(count("w1"), 10);
    assert.equal(count("w2"), 20);
    assert.equal(count("w4"), 40);
  });

  test("a light tenant that starts waiting overtakes a heavy backlog by at most its credit", async () => {
    await submit("heavy", 50);
    assert.deepEqual(await releaseAll(20), Array(20).fill("heavy"));
    // heavy's counter is 200 now, and the lane's floor 190 (the counter its last release
    // served). light arrives with 20 jobs of cost 10 and a credit of 100: lifted to 90.
    await submit("light", 20);
    const order = await releaseAll(20);
    // light goes first until it catches up (11 jobs, to 200), then they alternate (a tie goes to the older head).
    assert.deepEqual(order.slice(0, 11), Array(11).fill("light"));
    assert.deepEqual(order.slice(11, 15), ["heavy", "light", "heavy", "light"]);
    const counters = await fair.counters();
    assert.equal(counters.get("heavy"), 250);
    assert.equal(counters.get("light"), 240);
  });

  test("an idle tenant banks no more than its credit", async () => {
    await submit("a", 1);
    await releaseAll(1);
    await submit("b", 200);
    await releaseAll(100);
    // a went idle at counter 10, b has reached 1000. a comes back: lifted to 1000 - 100.
    await submit("a", 30);
    const order = await releaseAll(30);
    assert.deepEqual(order.slice(0, 10), Array(10).fill("a"));
    assert.notDeepEqual(order.slice(10, 20), Array(10).fill("a"), "a's credit is spent after 10 jobs");
  });

  test("bands are strict: no native job is released while an interactive one waits", async () => {
    await submit("a", 3, { priority: 150 });
    await releaseAll(2); // a's counter is ahead
    await submit("b", 2, { priority: 1050 }); // batch, low counter
    const [interactive] = await submit("a", 1, { priority: 50 });
    const released = await fair.release(lane, 4, 3000);
    assert.deepEqual(
      released.map((job) => job.id),
      [interactive, released[1]!.id, released[2]!.id, released[3]!.id],
    );
    assert.deepEqual(
      released.map((job) => job.tenant),
      ["a", "a", "b", "b"],
      "the interactive job, then a's native job, then b's batch jobs",
    );
  });

  test("a tenant's own jobs go by its priority level, then in order", async () => {
    const [low] = await submit("a", 1, { priority: 190 });
    const [high] = await submit("a", 1, { priority: 110 });
    const released = await fair.release(lane, 2, 2000);
    assert.deepEqual(
      released.map((job) => job.id),
      [high, low],
    );
  });

  test("the lane's floor and last release are refreshed once per call, at most every 250 ms", async () => {
    await submit("a", 5);
    const floor = async () => {
      const reply = await redis.zrange(keys.fairTenants(lane), 0, -1, "WITHSCORES");
      return Number(reply[reply.indexOf("|floor") + 1]);
    };
    await fair.release(lane, 2, 10_000); // serves counters 0 and 10
    assert.equal(await floor(), 10);
    await fair.release(lane, 1, 10_100); // serves 20, too soon to note
    assert.equal(await floor(), 10);
    assert.equal((await fair.summaries([lane]))[0]!.served, 10_000);
    await fair.release(lane, 1, 10_300); // serves 30
    assert.equal(await floor(), 30);
    assert.equal((await fair.summaries([lane]))[0]!.served, 10_300);
  });

  test("entries of cancelled jobs are dropped without a charge", async () => {
    const ids = await submit("a", 3);
    await redis.zrem(delayed(), ids[0]!, ids[1]!);
    const released = await fair.release(lane, 1, 2000);
    assert.deepEqual(
      released.map((job) => job.id),
      [ids[2]],
    );
    assert.equal((await fair.counters()).get("a"), 10);
    assert.equal((await fair.summaries([lane]))[0]!.held, 0);
  });

  test("settle corrects a tenant's counter by the tokens used, over its weight", async () => {
    await submit("a", 1, { weight: 2, cost: 100 });
    await releaseAll(1);
    assert.equal((await fair.counters()).get("a"), 50);
    await fair.settle(
      new Map([
        ["a", -40],
        ["ghost", 5],
      ]),
    );
    assert.equal((await fair.counters()).get("a"), 30);
    assert.equal((await fair.counters()).has("ghost"), false);
  });

  test("summaries give the held count, the earliest band and when the lane started waiting", async () => {
    await submit("a", 2, { priority: 1050 }, 5000);
    await submit("b", 1, { priority: 150 }, 6000);
    const [summary] = await fair.summaries([lane]);
    assert.deepEqual(summary, { lane, held: 3, band: 1, since: 5000, served: null });
    const tenants = await fair.tenants(lane);
    assert.deepEqual(tenants.map((t) => [t.tenant, t.held]).sort(), [
      ["a", 2],
      ["b", 1],
    ]);
  });
});
