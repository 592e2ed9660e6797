import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { Queue, Worker } from "bullmq";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { RedisKeys } from "../keys.js";
import { FairQueue } from "./fair-queue.js";
import { LaneIndex } from "./lane-index.js";

describe("LaneIndex (the lanes with jobs) against real Redis and BullMQ", () => {
  let url: string;
  let redis: Redis;
  let keys: RedisKeys;
  let index: LaneIndex;
  let queue: Queue;
  const lane = "lane-m";

  before(async () => {
    url = (await testRedis()).url;
    redis = new Redis(url, { maxRetriesPerRequest: null });
  });
  beforeEach(async () => {
    keys = new RedisKeys(uniquePrefix("lane-index"));
    index = new LaneIndex(redis, keys);
    await queue?.close();
    queue = new Queue(lane, { connection: redis, prefix: keys.prefix });
  });
  after(async () => {
    await queue?.close();
    await cleanupPrefix(url, "lane-index");
    redis.disconnect();
  });

  test("a hold adds the lane; a sync keeps it while the job is held, and drops it once the lane is empty", async () => {
    const fair = new FairQueue(redis, keys);
    await queue.add("completion", {}, { jobId: "j1", delay: 60_000 });
    await fair.hold(lane, [{ id: "j1", tenant: "lab", weight: 1, priority: 150, createdAt: 1, cost: 10 }], 1);
    assert.deepEqual(await index.withJobs(), [lane]);
    assert.deepEqual(await index.sync([lane]), [lane]);
    await queue.remove("j1");
    await redis.del(keys.fairJobs(lane));
    assert.deepEqual(await index.sync([lane]), []);
    assert.deepEqual(await index.withJobs(), []);
  });

  for (const [state, put] of [
    ["waiting", (q: Queue) => q.add("completion", {}, { jobId: "j" })],
    ["prioritized", (q: Queue) => q.add("completion", {}, { jobId: "j", priority: 5 })],
    ["delayed (parked, or a retry in backoff)", (q: Queue) => q.add("completion", {}, { jobId: "j", delay: 60_000 })],
  ] as const) {
    test(`a lane whose one job is ${state} stays, and is added back by a sync`, async () => {
      await put(queue);
      assert.deepEqual(await index.sync([lane]), [lane]);
      assert.deepEqual(await index.withJobs(), [lane]);
    });
  }

  test("a lane whose one job is running (active) stays until the job is done", async () => {
    await queue.add("completion", {}, { jobId: "j" });
    const worker = new Worker(lane, null, { connection: redis, prefix: keys.prefix, autorun: false });
    try {
      const job = await worker.getNextJob("token", { block: false });
      assert.equal(job?.id, "j");
      assert.deepEqual(await index.sync([lane]), [lane], "an active job keeps the lane");
      await job!.moveToCompleted("done", "token", false);
      assert.deepEqual(await index.sync([lane]), [], "an empty lane leaves");
    } finally {
      await worker.close();
    }
  });

  test("a lane listed for fair claim with no BullMQ job left (cancelled) stays until a release drops the entry", async () => {
    await redis.zadd(keys.fairJobs(lane), 0, "lab|0150|1|10|gone");
    assert.deepEqual(await index.sync([lane]), [lane]);
  });
});
