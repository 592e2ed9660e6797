import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { FairQueue, HOLD_DELAY_MS, RedisKeys, bullPriority, laneName } from "@corral/shared";
import { cleanupPrefix, testRedis, uniquePrefix } from "../support/redis.js";
import { seededRandom } from "./workload.js";

// A slot that dies between its release and its take, with real BullMQ: the jobs are real
// BullMQ jobs added with the hold delay and held with FairQueue.hold; claimers release one
// job and take with getNextJob, as the worker's claim loop does, and some die in between.

describe("fair claim: a slot that dies between release and take (real BullMQ)", () => {
  let url: string;
  let redis: Redis;
  let keys: RedisKeys;
  let fair: FairQueue;
  let queue: Queue;
  let worker: Worker;
  const lane = laneName("stories260K");

  before(async () => {
    url = (await testRedis()).url;
    redis = new Redis(url, { maxRetriesPerRequest: null });
  });
  beforeEach(async () => {
    await worker?.close(true);
    await queue?.close();
    keys = new RedisKeys(uniquePrefix("fairsim-crash"));
    fair = new FairQueue(redis, keys);
    queue = new Queue(lane, { connection: redis, prefix: keys.prefix });
    worker = new Worker(lane, null, { connection: redis, prefix: keys.prefix, autorun: false });
  });
  after(async () => {
    await worker?.close(true);
    await queue?.close();
    await cleanupPrefix(url, "fairsim-crash");
    redis.disconnect();
  });

  /** Adds `count` jobs per tenant to the lane with the hold delay, and holds them. */
  async function submit(tenants: readonly string[], count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++)
      for (const tenant of tenants) {
        const id = `${tenant}-${i}`;
        await queue.add("job", { tenant }, { jobId: id, delay: HOLD_DELAY_MS });
        const held = await fair.hold(lane, [
          { id, tenant, weight: 1, priority: bullPriority("native"), createdAt: 1000 + i, cost: 80 },
        ]);
        assert.equal(held, 1);
        ids.push(id);
      }
    return ids;
  }

  /** One claim: release one job, then (unless the slot dies first) take the next job of the lane and complete it. */
  async function claim(token: string, dies: boolean, taken: string[]): Promise<{ released: string | null }> {
    const [released] = await fair.release(lane, 1);
    if (dies) return { released: released?.id ?? null };
    const job = await worker.getNextJob(token, { block: false });
    if (job) {
      taken.push(job.id!);
      await job.moveToCompleted("done", token, false);
    }
    return { released: released?.id ?? null };
  }

  test("every job is taken exactly once when claimers die after a third of their releases", async () => {
    const ids = await submit(["a", "b", "c"], 20);
    const random = seededRandom(42);
    const taken: string[] = [];
    let deaths = 0;
    for (let n = 0; n < 500; n++) {
      const dies = random() < 1 / 3;
      const { released } = await claim(`slot-${n}`, dies, taken);
      if (dies && released) deaths++;
      const [held, waiting] = await Promise.all([fair.summaries([lane]), queue.getWaitingCount()]);
      if (held[0]!.held === 0 && waiting === 0) break;
    }
    assert.ok(deaths >= 10, `only ${deaths} claimers died holding a release`);
    assert.deepEqual([...taken].sort(), [...ids].sort(), "each job taken once, none lost");
    assert.equal(await queue.getCompletedCount(), ids.length);
    assert.equal(await queue.getDelayedCount(), 0);
    assert.equal(await worker.getNextJob("late", { block: false }), undefined, "nothing is left to run again");
  });

  test("the last held job, released by a slot that dies, is taken by the next claimer although it releases nothing", async () => {
    const [only] = await submit(["a"], 1);
    assert.equal((await claim("dies", true, [])).released, only);
    const taken: string[] = [];
    const { released } = await claim("next", false, taken);
    assert.equal(released, null, "nothing was left to release");
    assert.deepEqual(taken, [only]);
  });

  test("the orphan goes first: the next claimer takes the job released before its own", async () => {
    const ids = await submit(["a", "b"], 2);
    const orphan = (await claim("dies", true, [])).released;
    const taken: string[] = [];
    const own = (await claim("next", false, taken)).released;
    assert.deepEqual(taken, [orphan]);
    assert.notEqual(own, orphan);
    await claim("third", false, taken);
    assert.deepEqual(taken, [orphan, own]);
    assert.equal(new Set(ids).size, 4);
  });

  const again = (id: string, createdAt: number) =>
    fair.hold(lane, [{ id, tenant: "a", weight: 1, priority: bullPriority("native"), createdAt, cost: 80 }]);

  test("a job held again in another place (a recovered job, a later time) is released once and charged once", async () => {
    const [id] = await submit(["a"], 1);
    await again(id!, 5000);
    const released = await fair.release(lane, 2);
    assert.deepEqual(
      released.map((job) => job.id),
      [id],
    );
    assert.equal((await fair.summaries([lane]))[0]!.held, 0, "the second entry was dropped");
    assert.equal((await fair.counters()).get("a"), 80);
    assert.equal(await queue.getWaitingCount(), 1);
  });

  test("a job held twice with the same entry (a retried hold) is counted once", async () => {
    const [id] = await submit(["a"], 1);
    await again(id!, 1000);
    assert.equal((await fair.summaries([lane]))[0]!.held, 1, "one job is held");
    const released = await fair.release(lane, 2);
    assert.deepEqual(
      released.map((job) => job.id),
      [id],
    );
    assert.equal((await fair.summaries([lane]))[0]!.held, 0, "nothing is held after the release");
  });
});
