import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { pino } from "pino";
import { JobRecords, RedisKeys, queuedJobRecord, type JobRecord } from "@corral/shared";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { SlotRecovery } from "./slot-recovery.js";

const LANE = "lane-recovery-test";

let url: string;
let redis: Redis;
const prefix = uniquePrefix("slot-recovery");
const keys = new RedisKeys(prefix);
let queue: Queue;
let worker: Worker;

before(async () => {
  url = (await testRedis()).url;
  redis = new Redis(url, { maxRetriesPerRequest: null });
  queue = new Queue(LANE, { connection: redis, prefix: keys.prefix });
  worker = new Worker(LANE, null, { connection: redis, prefix: keys.prefix, autorun: false, lockDuration: 30_000 });
  await redis.sadd(keys.lanes, LANE);
});

after(async () => {
  await worker?.close(true);
  await queue?.close();
  redis?.disconnect();
  await cleanupPrefix(url, prefix);
});

test("puts back only the jobs whose locks the dead process holds, each with one attempt counted", async () => {
  for (const [id, priority] of [
    ["dead-1", 5],
    ["dead-2", 0],
    ["live-1", 5],
    ["other-slot", 5],
  ] as const)
    await queue.add("completion", { id }, { jobId: id, attempts: 3, ...(priority ? { priority } : {}) });
  // Claimed in the queue's order: the job without a priority first, then by priority and age.
  const claims: [string, string][] = [
    ["box:cpu0:111:2", "dead-2"],
    ["box:cpu0:111:1", "dead-1"],
    ["box:cpu0:222:1", "live-1"],
    ["box:cpu1:111:1", "other-slot"],
  ];
  for (const [token, expected] of claims) {
    const job = await worker.getNextJob(token, { block: false });
    assert.equal(job?.id, expected);
  }
  // Each job's record, as a slot that started it wrote it.
  const records = new JobRecords(redis, keys);
  for (const [token, id] of claims) {
    const record: JobRecord = {
      ...queuedJobRecord({ id, tenant: "lab", model: "m", source: "native", priority: 50, created_at: 1 }),
      status: "running",
      started_at: 2,
      worker: token.split(":").slice(0, 2).join(":"),
      attempts: 1,
    };
    await redis.set(keys.job(id), JSON.stringify(record));
  }
  const recovery = new SlotRecovery({ redis, keys, logger: pino({ level: "silent" }) });

  const recovered = await recovery.recover("box:cpu0:111:");

  for (const id of ["dead-1", "dead-2"]) {
    const record = await records.get(id);
    assert.equal(record?.status, "queued", `${id}: waiting again, not running on a dead slot`);
    assert.equal(record?.worker, null);
    assert.equal(record?.attempts, 1, "the interrupted run is counted");
  }
  for (const id of ["live-1", "other-slot"]) assert.equal((await records.get(id))?.status, "running");

  assert.deepEqual(recovered.map((job) => job.id).sort(), ["dead-1", "dead-2"]);
  assert.deepEqual(
    recovered.map((job) => job.attemptsMade),
    [1, 1],
  );
  assert.equal(await queue.getJobState("dead-1"), "prioritized");
  assert.equal(await queue.getJobState("dead-2"), "waiting");
  assert.equal((await queue.getJob("dead-1"))?.attemptsMade, 1);
  assert.equal(await redis.exists(`${keys.prefix}:${LANE}:dead-1:lock`), 0, "the dead token's lock is gone");
  for (const id of ["live-1", "other-slot"]) {
    assert.equal(await queue.getJobState(id), "active", `${id} is another process's`);
    assert.equal((await queue.getJob(id))?.attemptsMade, 0);
  }
  // A marker wakes slots blocked on the lane's markers.
  assert.ok((await redis.zcard(`${keys.prefix}:${LANE}:marker`)) > 0);
  // The put-back jobs are claimed again, with their attempt counted.
  for (const [n, id] of [
    [1, "dead-2"],
    [2, "dead-1"],
  ] as const) {
    const again = await worker.getNextJob(`box:cpu0:333:${n}`, { block: false });
    assert.equal(again?.id, id);
    assert.equal(again?.attemptsMade, 1);
  }

  assert.deepEqual(await recovery.recover("box:cpu0:111:"), [], "a second look finds nothing more");
});
