import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { RedisKeys } from "../keys.js";
import { queuedJobRecord, type JobRecord } from "../schemas/job-record.js";
import { JOB_EVENT_RECORD_MAX_BYTES, JobRecords, parseJobEvent } from "./job-records.js";
import { JobTransitions } from "./job-transitions.js";

const record = (id: string, tenant: string, created_at: number): JobRecord =>
  queuedJobRecord({ id, tenant, model: "stories260K", source: "native", priority: 150, created_at, metadata: {} });

describe("JobRecords against real Redis", () => {
  let url: string;
  let redis: Redis;
  const prefix = uniquePrefix("records");
  const keys = new RedisKeys(prefix);
  let records: JobRecords;
  let moves: JobTransitions;

  before(async () => {
    url = (await testRedis()).url;
    redis = new Redis(url);
    records = new JobRecords(redis, keys);
    moves = new JobTransitions(records);
  });
  after(async () => {
    await cleanupPrefix(url, prefix);
    redis.disconnect();
  });

  test("create then get round-trips the record, and a duplicate id is refused", async () => {
    await records.create(record("a1", "t1", 1000));
    assert.deepEqual(await records.get("a1"), record("a1", "t1", 1000));
    await assert.rejects(records.create(record("a1", "t1", 1000)), /already exists/);
  });

  test("getForTenant hides another tenant's job", async () => {
    await records.create(record("b1", "t1", 1001));
    assert.equal(await records.getForTenant("b1", "t2"), null);
    assert.equal((await records.getForTenant("b1", "t1"))?.id, "b1");
  });

  test("the first final transition wins; later ones are refused", async () => {
    await records.create(record("c1", "t1", 1002));
    const running = await moves.start({ id: "c1" }, { startedAt: 1003, worker: "w1", gpu: null, attempts: 1 });
    assert.equal(running?.status, "running");
    const result = {
      text: "hello",
      finish_reason: "stop" as const,
      usage: { prompt_tokens: 3, completion_tokens: 1 },
      timings: { queue_ms: 1, load_ms: 0, ttft_ms: 2.5, generation_ms: 3 },
    };
    const events = new Redis(url);
    await events.subscribe(keys.jobEventsChannel);
    const published = new Promise<string>((resolve) => events.once("message", (_c, id: string) => resolve(id)));
    const [first, second] = await Promise.all([
      moves.succeed({ id: "c1" }, 1004, result),
      moves.succeed({ id: "c1" }, 1004, { ...result, text: "other" }),
    ]);
    assert.equal([first, second].filter(Boolean).length, 1);
    assert.equal((await records.get("c1"))?.result?.text, first ? "hello" : "other");
    const event = parseJobEvent(await published);
    assert.equal(event.id, "c1");
    assert.ok(event.record !== null, "a small final record is published with the id");
    assert.deepEqual(JSON.parse(event.record), await records.get("c1"), "the published record is the stored one");
    assert.ok((await redis.ttl(keys.job("c1"))) > 0, "final records expire");
    events.disconnect();
  });

  test("a final record over the size limit is published as its id alone", async () => {
    await records.create(record("big1", "t1", 1005));
    const events = new Redis(url);
    await events.subscribe(keys.jobEventsChannel);
    const published = new Promise<string>((resolve) => events.once("message", (_c, m: string) => resolve(m)));
    const text = "x".repeat(JOB_EVENT_RECORD_MAX_BYTES);
    await moves.succeed({ id: "big1" }, 1006, {
      text,
      finish_reason: "length",
      usage: { prompt_tokens: 1, completion_tokens: 1 },
      timings: { queue_ms: 1, load_ms: 0, ttft_ms: 1, generation_ms: 1 },
    });
    assert.deepEqual(parseJobEvent(await published), { id: "big1", record: null });
    events.disconnect();
  });

  test("a patch after the final state keeps the record's expiry", async () => {
    await records.create(record("ttl1", "t1", 1003));
    await moves.cancelQueued({ id: "ttl1" }, 1004);
    assert.ok((await redis.ttl(keys.job("ttl1"))) > 0);
    const result = {
      text: "partial",
      finish_reason: "cancelled" as const,
      usage: { prompt_tokens: 3, completion_tokens: 1 },
      timings: { queue_ms: 1, load_ms: 0, ttft_ms: null, generation_ms: 3 },
    };
    assert.equal((await moves.addCancelledResult({ id: "ttl1" }, result))?.result?.text, "partial");
    assert.ok((await redis.ttl(keys.job("ttl1"))) > 0, "still expires");
  });

  test("transition of a missing record returns null", async () => {
    assert.equal(await moves.cancelQueued({ id: "nope" }, 1), null);
  });

  test("listForTenant pages newest first and filters by status", async () => {
    for (let i = 0; i < 5; i++) await records.create(record(`p${i}`, "pager", 2000 + i));
    await moves.cancelQueued({ id: "p3" }, 2004);
    const first = await records.listForTenant("pager", { limit: 2 });
    assert.deepEqual(
      first.data.map((r) => r.id),
      ["p4", "p3"],
    );
    assert.equal(first.has_more, true);
    const second = await records.listForTenant("pager", { limit: 10, after: "p3" });
    assert.deepEqual(
      second.data.map((r) => r.id),
      ["p2", "p1", "p0"],
    );
    assert.equal(second.has_more, false);
    const cancelled = await records.listForTenant("pager", { status: "cancelled" });
    assert.deepEqual(
      cancelled.data.map((r) => r.id),
      ["p3"],
    );
  });

  test("listForTenant skips records that expired and prunes the index", async () => {
    await records.create(record("e1", "expiring", 3000));
    await records.create(record("e2", "expiring", 3001));
    await redis.del(keys.job("e2"));
    const page = await records.listForTenant("expiring");
    assert.deepEqual(
      page.data.map((r) => r.id),
      ["e1"],
    );
    assert.equal(await redis.zscore(keys.tenantJobs("expiring"), "e2"), null);
  });

  test("a batch line's final state is recorded in its batch once per custom_id, counted once", async () => {
    const line = (id: string, custom_id: string): JobRecord => ({
      ...record(id, "batcher", 4000),
      source: "batch",
      batch_id: "batch_x",
      custom_id,
    });
    // As a batch ingest writes them (admitJobs): records only, not in the tenant's job list.
    for (const l of [line("bl1", "a"), line("bl2", "b"), line("bl3", "a-again")]) {
      await redis.set(keys.job(l.id), JSON.stringify(l));
    }
    await redis.hset(keys.batchCounts("batch_x"), "open", 1); // as BatchStore.create leaves it
    assert.equal(await redis.zcard(keys.tenantJobs("batcher")), 0, "batch lines stay out of the job list");
    const result = {
      text: "hi",
      finish_reason: "length" as const,
      usage: { prompt_tokens: 2, completion_tokens: 1 },
      timings: { queue_ms: 1, load_ms: 0, ttft_ms: null, generation_ms: 1 },
    };
    await moves.start({ id: "bl1", batch_id: "batch_x" }, { startedAt: 4, worker: "w1", gpu: null, attempts: 1 });
    const [first, second] = await Promise.all([
      moves.succeed({ id: "bl1", batch_id: "batch_x" }, 5, result),
      moves.cancel({ id: "bl1", batch_id: "batch_x" }, 6, { ...result, finish_reason: "cancelled" }),
    ]);
    assert.equal([first, second].filter(Boolean).length, 1);
    // Without the batch id: the move finds the batch's keys itself.
    await moves.fail({ id: "bl2" }, 7, { message: "boom", code: "worker_error" });
    // A non-final transition (a retry back to queued) records nothing.
    await moves.retry({ id: "bl3" }, { message: "retry", code: "worker_error" });
    // The same custom_id reaching a final state through another record is not counted again.
    await redis.set(keys.job("bl4"), JSON.stringify(line("bl4", "a")));
    await moves.succeed({ id: "bl4", batch_id: "batch_x" }, 8, result);

    const { open, ...counts } = await redis.hgetall(keys.batchCounts("batch_x"));
    assert.equal(open, "1");
    const winner = first ? "completed" : "cancelled";
    assert.deepEqual(counts, { [winner]: "1", failed: "1" });
    const results = await redis.hgetall(keys.batchResults("batch_x"));
    assert.deepEqual(Object.keys(results).sort(), ["a", "b"]);
    const a = JSON.parse(results.a!);
    assert.equal(a.job_id, "bl1");
    assert.equal(a.status, first ? "succeeded" : "cancelled");
    assert.equal(a.model, "stories260K");
    if (first) assert.deepEqual(a.result, result);
    const b = JSON.parse(results.b!);
    assert.deepEqual(b.error, { message: "boom", code: "worker_error" });
    assert.equal(b.result, null);
    assert.equal(b.finished_at, 7);
  });

  test("a batch line that finishes after its batch closed leaves the batch's results and counters alone", async () => {
    const line = (id: string, custom_id: string): JobRecord => ({
      ...record(id, "batcher", 4100),
      source: "batch",
      batch_id: "batch_closed",
      custom_id,
    });
    for (const l of [line("cl1", "a"), line("cl2", "b")]) await redis.set(keys.job(l.id), JSON.stringify(l));
    // The batch is open, then closes (its files are being written from the results).
    await redis.hset(keys.batchCounts("batch_closed"), { open: 1, total: 2 });
    await redis.hdel(keys.batchCounts("batch_closed"), "open");
    const late = await moves.fail({ id: "cl1", batch_id: "batch_closed" }, 9, {
      message: "late",
      code: "worker_error",
    });
    assert.equal(late?.status, "failed", "the record itself still reaches its final state");
    assert.deepEqual(await redis.hgetall(keys.batchCounts("batch_closed")), { total: "2" }, "not counted");
    assert.equal(await redis.exists(keys.batchResults("batch_closed")), 0, "not recorded");
    // Finalized: the batch's working state is dropped (dropWorkingState); a line finishing
    // now (before its record is dropped) must not bring the keys back, without a TTL.
    await redis.unlink(keys.batchCounts("batch_closed"), keys.batchResults("batch_closed"));
    await moves.cancelQueued({ id: "cl2" }, 10);
    assert.equal(await redis.exists(keys.batchCounts("batch_closed")), 0, "the counters are not recreated");
    assert.equal(await redis.exists(keys.batchResults("batch_closed")), 0, "the results are not recreated");
  });

  test("createMany leaves existing records as they are", async () => {
    await records.create(record("k1", "keeper", 5000));
    await moves.start({ id: "k1" }, { startedAt: 5001, worker: "w9", gpu: null, attempts: 1 });
    await records.createMany([record("k1", "keeper", 5000), record("k2", "keeper", 5001)]);
    assert.equal((await records.get("k1"))?.status, "running");
    assert.equal((await records.get("k2"))?.status, "queued");
  });
});
