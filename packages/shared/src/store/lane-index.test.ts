import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { Queue, Worker } from "bullmq";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { RedisKeys } from "../keys.js";
import { FairQueue, HOLD_DELAY_MS } from "./fair-queue.js";
import { LaneIndex, NOTHING_HELD } from "./lane-index.js";

describe("LaneIndex (the lanes with jobs, longest waiting first) against real Redis and BullMQ", () => {
  let url: string;
  let redis: Redis;
  let keys: RedisKeys;
  let index: LaneIndex;
  let fair: FairQueue;
  const queues = new Map<string, Queue>();
  const queue = (lane: string) => {
    let q = queues.get(lane);
    if (!q) queues.set(lane, (q = new Queue(lane, { connection: redis, prefix: keys.prefix })));
    return q;
  };
  const lane = "lane-m";

  before(async () => {
    url = (await testRedis()).url;
    redis = new Redis(url, { maxRetriesPerRequest: null });
  });
  beforeEach(async () => {
    for (const q of queues.values()) await q.close();
    queues.clear();
    keys = new RedisKeys(uniquePrefix("lane-index"));
    index = new LaneIndex(redis, keys);
    fair = new FairQueue(redis, keys);
  });
  after(async () => {
    for (const q of queues.values()) await q.close();
    await cleanupPrefix(url, "lane-index");
    redis.disconnect();
  });

  /** Adds held jobs to a lane as the scheduler does (BullMQ's delayed set, then holdFair). */
  const hold = async (on: string, ids: string[], now: number) => {
    for (const id of ids) await queue(on).add("completion", {}, { jobId: id, delay: HOLD_DELAY_MS });
    await fair.hold(
      on,
      ids.map((id) => ({ id, tenant: "lab", weight: 1, priority: 150, createdAt: now, cost: 10 })),
      now,
    );
  };

  test("a hold scores the lane with when it started waiting; a later hold keeps that clock", async () => {
    await hold(lane, ["j1"], 1000);
    await hold(lane, ["j2"], 2000);
    await hold("lane-n", ["k1"], 1500);
    assert.deepEqual(await index.withJobs(), [
      { lane, waitingSince: 1000 },
      { lane: "lane-n", waitingSince: 1500 },
    ]);
  });

  test("a release moves the lane's clock to now while it holds more, and to 'nothing held' after its last", async () => {
    await hold(lane, ["j1", "j2"], 1000);
    await hold("lane-n", ["k1"], 1500);
    await fair.release(lane, 1, 3000);
    assert.deepEqual(await index.withJobs(), [
      { lane: "lane-n", waitingSince: 1500 },
      { lane, waitingSince: 3000 },
    ]);
    await fair.release(lane, 1, 4000);
    assert.deepEqual(await index.withJobs(), [
      { lane: "lane-n", waitingSince: 1500 },
      { lane, waitingSince: NOTHING_HELD },
    ]);
  });

  test("a sync drops a lane only once no job is left in it", async () => {
    await hold(lane, ["j1"], 1000);
    assert.deepEqual(await index.sync([lane], 5000), [lane]);
    assert.deepEqual(await index.withJobs(), [{ lane, waitingSince: 1000 }], "the older clock stays");
    await queue(lane).remove("j1");
    await redis.del(keys.fairJobs(lane));
    assert.deepEqual(await index.sync([lane], 6000), []);
    assert.deepEqual(await index.withJobs(), []);
  });

  for (const [state, put, ready] of [
    ["waiting (a stalled job put back)", (q: Queue) => q.add("completion", {}, { jobId: "j" }), true],
    ["prioritized", (q: Queue) => q.add("completion", {}, { jobId: "j", priority: 5 }), true],
    [
      "delayed (parked, or a retry in backoff)",
      (q: Queue) => q.add("completion", {}, { jobId: "j", delay: 60_000 }),
      false,
    ],
  ] as const) {
    test(`a lane whose one job is ${state} is added back by a sync, ${ready ? "with a clock" : "as nothing held"}`, async () => {
      await put(queue(lane));
      assert.deepEqual(await index.sync([lane], 7000), [lane]);
      assert.deepEqual(await index.withJobs(), [{ lane, waitingSince: ready ? 7000 : NOTHING_HELD }]);
    });
  }

  test("a lane whose one job is running (active) stays, as nothing held, until the job is done", async () => {
    await queue(lane).add("completion", {}, { jobId: "j" });
    const worker = new Worker(lane, null, { connection: redis, prefix: keys.prefix, autorun: false });
    try {
      const job = await worker.getNextJob("token", { block: false });
      assert.equal(job?.id, "j");
      assert.deepEqual(await index.sync([lane], 8000), [lane], "an active job keeps the lane");
      assert.deepEqual(await index.withJobs(), [{ lane, waitingSince: NOTHING_HELD }]);
      await job!.moveToCompleted("done", "token", false);
      assert.deepEqual(await index.sync([lane], 9000), [], "an empty lane leaves");
    } finally {
      await worker.close();
    }
  });

  test("a lane listed for fair claim with no BullMQ job left (cancelled) stays until a release drops the entry", async () => {
    await redis.zadd(keys.fairJobs(lane), 0, "lab|0150|1|10|gone");
    assert.deepEqual(await index.sync([lane], 1000), [lane]);
  });
});
