import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { Queue } from "bullmq";
import { RedisKeys } from "@corral/shared";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { LaneReader } from "./lane-reader.js";

describe("LaneReader", () => {
  let url: string;
  let redis: Redis;
  let keys: RedisKeys;
  const queues: Queue[] = [];
  const queue = (name: string) => {
    const q = new Queue(name, { connection: redis, prefix: keys.prefix });
    queues.push(q);
    return q;
  };

  before(async () => {
    url = (await testRedis()).url;
    redis = new Redis(url, { maxRetriesPerRequest: null });
    keys = new RedisKeys(uniquePrefix("lane-reader"));
  });
  after(async () => {
    for (const q of queues) await q.close();
    redis.disconnect();
    await cleanupPrefix(url, keys.prefix);
  });

  test("counts ready jobs and reports the head job's priority and age", async () => {
    const now = Date.now();
    const a = queue("lane-a");
    await a.add("x", {}, { jobId: "a1", priority: 150, timestamp: now - 5000 });
    await a.add("x", {}, { jobId: "a2", priority: 50, timestamp: now - 1000 });
    await a.add("x", {}, { jobId: "a3", priority: 50, timestamp: now - 500 });
    const b = queue("lane-b");
    await b.add("x", {}, { jobId: "b1", delay: 60_000 });
    const c = queue("lane-c");
    await c.add("x", {}, { jobId: "c1", priority: 10 });
    await c.pause();

    const reader = new LaneReader(redis, keys);
    const [la, lb, lc, empty] = await reader.read(["lane-a", "lane-b", "lane-c", "lane-none"], Date.now());
    assert.deepEqual(
      { waiting: la!.waiting, head: la!.headJobId, priority: la!.headPriority, at: la!.headTimestamp },
      { waiting: 3, head: "a2", priority: 50, at: now - 1000 },
    );
    assert.equal(lb!.waiting, 0, "a delayed job is not ready before it is due");
    assert.equal(lc!.waiting, 0, "a paused lane offers nothing");
    assert.equal(empty!.waiting, 0);
    assert.equal(empty!.headJobId, null);

    // Once due, a delayed job counts (getNextJob promotes it).
    const [due] = await reader.read(["lane-b"], Date.now() + 61_000);
    assert.equal(due!.waiting, 1);
    assert.equal(due!.headJobId, "b1");
  });
});
