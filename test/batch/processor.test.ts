import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { pino } from "pino";
import { Registry } from "prom-client";
import { FairQueue, JobTransitions, RedisKeys, laneName, type BatchLineResult } from "@corral/shared";
import {
  BatchProcessor,
  JobService,
  ModelCatalog,
  createBatchSystem,
  inputCopyName,
  lineJobId,
  type BatchSystem,
} from "@corral/scheduler";
import { STORIES, sharedModelsDir } from "../support/models.js";
import { cleanupPrefix, testRedis, uniquePrefix } from "../support/redis.js";
import { chatLine, jsonl } from "./support/harness.js";

/**
 * The batch processor in this process, step by step, on real Redis (no worker: nothing
 * runs), with a clock the test moves: ingest interrupted and resumed, expiry.
 */
describe("batch processing, step by step", () => {
  const logger = pino({ level: process.env.CORRAL_TEST_LOG_LEVEL ?? "silent" });
  const prefix = uniquePrefix("batchproc");
  const keys = new RedisKeys(prefix);
  let url: string;
  let redis: Redis;
  let dir: string;
  let jobs: JobService;
  let system: BatchSystem;
  let now = Date.now();
  let ingestedChunks = 0;
  let stopAfterChunks = Infinity;
  let lease: AbortController;

  before(async () => {
    url = (await testRedis()).url;
    redis = new Redis(url, { maxRetriesPerRequest: null });
    dir = await mkdtemp(join(tmpdir(), "corral-batchproc-"));
    await symlink(join(sharedModelsDir(), `${STORIES}.gguf`), join(dir, `${STORIES}.gguf`));
    const catalog = await ModelCatalog.create({ redis, keys, modelsDir: dir, logger, defaultContextSize: 256 });
    jobs = new JobService({ redis, keys, catalog, logger });
    system = await createBatchSystem({
      redis,
      keys,
      jobs,
      registry: new Registry(),
      logger,
      dataDir: join(dir, "data"),
      chunkLines: 10,
      clock: () => now,
    });
    // The loop stays off: the test drives the steps (create() only kicks a closed runner).
    await system.runner.close();
  });

  after(async () => {
    await jobs?.close();
    redis?.disconnect();
    await cleanupPrefix(url, prefix);
    await rm(dir, { recursive: true, force: true });
  });

  /** One step under a fresh lease, with a processor whose ingest can be stopped after some chunks. */
  const step = async (id: string) => {
    lease = new AbortController();
    const token = `test-${Math.random()}`;
    assert.ok(await system.store.acquireLease(id, token, 60_000));
    const processor = new BatchProcessor({
      redis,
      keys,
      store: system.store,
      files: system.files,
      jobs,
      logger,
      chunkLines: 10,
      clock: () => now,
      onIngested: () => {
        if (++ingestedChunks >= stopAfterChunks) lease.abort("test stop");
      },
    });
    try {
      await processor.step(id, { token, signal: lease.signal });
    } catch (error) {
      if (!lease.signal.aborted) throw error; // an interrupted step throws, as the runner expects
    } finally {
      await system.store.releaseLease(id, token);
    }
  };

  const create = async (lines: unknown[]) => {
    const file = await system.files.create("t", {
      filename: "in.jsonl",
      purpose: "batch",
      content: Readable.from([jsonl(lines)]),
    });
    return system.batches.create("t", {
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
  };

  test("an ingest stopped after three chunks resumes where it stopped and queues each line once", async () => {
    const ids = Array.from({ length: 95 }, (_, i) => `r-${i}`);
    const batch = await create(ids.map((id, i) => (i === 40 ? chatLine(id, { model: "nope" }) : chatLine(id))));
    stopAfterChunks = 3;
    ingestedChunks = 0;
    await step(batch.id);
    const partial = await system.store.counters(batch.id);
    // Stopped after the third chunk; the chunks already handed to Redis finish and are saved too.
    assert.ok([30, 40, 50].includes(partial.ingested), `ingested ${partial.ingested}`);
    assert.equal(partial.ingestDone, false);
    assert.equal(partial.ingestLine, partial.ingested + 1);

    stopAfterChunks = Infinity;
    await step(batch.id);
    const done = await system.store.counters(batch.id);
    assert.equal(done.ingested, 95);
    assert.equal(done.ingestDone, true);
    assert.equal(done.failed, 1, "the unknown model's line is recorded failed");
    const queue = new Queue(laneName(STORIES), { connection: redis, prefix: keys.prefix });
    try {
      // Held for fair claim: in the delayed set, until a slot releases them.
      const waiting = await queue.getJobs(["delayed"], 0, -1);
      assert.equal(waiting.length, 94);
      assert.deepEqual(
        new Set(waiting.map((job) => job.id)),
        new Set(ids.map((_, i) => lineJobId(batch.id, i + 1)).filter((_, i) => i !== 40)),
      );
      const job = waiting[0]!;
      assert.equal(job.data.source, "batch");
      const [entry] = await redis.zrangebylex(keys.fairJobs(laneName(STORIES)), "[t|", "+", "LIMIT", 0, 1);
      assert.match(entry!, /^[^|]+\|1050\|/, "batch lines run in the lowest band");
    } finally {
      await queue.close();
    }
    const record = await jobs.records.get(lineJobId(batch.id, 1));
    assert.equal(record?.batch_id, batch.id);
    assert.equal(record?.custom_id, "r-0");
    assert.equal(await redis.zcard(keys.tenantJobs("t")), 0, "batch lines stay out of the job list");
    const [fault] = await redis.hmget(keys.batchResults(batch.id), "r-40");
    assert.equal((JSON.parse(fault!) as BatchLineResult).status_code, 404);
  });

  test("past its 24 hours a batch expires: waiting lines leave the lane, the error file says batch_expired", async () => {
    const batch = await create([chatLine("e-0"), chatLine("e-1"), chatLine("e-2")]);
    await step(batch.id);
    assert.equal((await system.batches.get("t", batch.id)).status, "in_progress");
    now += 25 * 3600 * 1000;
    await step(batch.id);
    const expired = await system.batches.get("t", batch.id);
    assert.equal(expired.status, "expired");
    assert.ok(expired.expired_at !== null);
    assert.deepEqual(expired.request_counts, { total: 3, completed: 0, failed: 3 });
    assert.equal(expired.output_file_id, null);
    const { content } = await system.files.open("t", expired.error_file_id!);
    let text = "";
    for await (const chunk of content) text += String(chunk);
    const lines = text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => [l.custom_id, l.error.code]),
      [
        ["e-0", "batch_expired"],
        ["e-1", "batch_expired"],
        ["e-2", "batch_expired"],
      ],
    );
    const queue = new Queue(laneName(STORIES), { connection: redis, prefix: keys.prefix });
    try {
      for (let n = 1; n <= 3; n++) {
        assert.equal(await queue.getJob(lineJobId(batch.id, n)), undefined, "the waiting job left its lane");
        assert.equal(await jobs.records.get(lineJobId(batch.id, n)), null, "line records are dropped once final");
      }
    } finally {
      await queue.close();
    }
    assert.equal(
      await redis.exists(keys.batchResults(batch.id), keys.batchCounts(batch.id)),
      0,
      "working state dropped",
    );
    assert.equal(await redis.sismember(keys.activeBatches, batch.id), 0);
  });

  test("a batch whose input vanished from the file store fails, and its waiting lines leave the lane", async () => {
    const batch = await create([chatLine("m-0"), chatLine("m-1")]);
    await step(batch.id);
    assert.equal((await system.batches.get("t", batch.id)).status, "in_progress");
    await system.files.store.remove(inputCopyName(batch.id));
    await step(batch.id);
    const failed = await system.batches.get("t", batch.id);
    assert.equal(failed.status, "failed");
    assert.deepEqual(
      failed.errors?.data.map((e) => e.code),
      ["input_file_missing"],
    );
    const queue = new Queue(laneName(STORIES), { connection: redis, prefix: keys.prefix });
    try {
      assert.equal(await queue.getJob(lineJobId(batch.id, 1)), undefined);
      assert.equal(await queue.getJob(lineJobId(batch.id, 2)), undefined);
    } finally {
      await queue.close();
    }
  });

  test("cancelMany: a queued job is cancelled whether or not BullMQ could remove it; a running one gets a cancel", async () => {
    const input = { model: STORIES, prompt: "never", max_tokens: 8 };
    const gone = await jobs.submit("cm", input, { source: "native" });
    const claimed = await jobs.submit("cm", input, { source: "native" });
    const running = await jobs.submit("cm", input, { source: "native" });
    const queue = new Queue(laneName(STORIES), { connection: redis, prefix: keys.prefix });
    const connection = new Redis(url, { maxRetriesPerRequest: null });
    const worker = new Worker(laneName(STORIES), null, { connection, prefix: keys.prefix, autorun: false });
    const subscriber = new Redis(url);
    const moves = new JobTransitions(jobs.records);
    try {
      // Gone from BullMQ (remove() gives 0): its record would otherwise stay queued for ever.
      await queue.remove(gone.id);
      // Claimed by a worker that has not started it yet: locked, so remove() gives 0 too.
      for (;;) {
        await new FairQueue(redis, keys).release(laneName(STORIES), 1);
        const next = await worker.getNextJob("cm-token", { block: false });
        assert.ok(next, "the claimed job should be in the lane");
        if (next.id === claimed.id) break;
      }
      await moves.start(running, { startedAt: Date.now(), worker: "w", gpu: null, attempts: 1 });
      const published: string[] = [];
      subscriber.on("message", (_channel, id: string) => published.push(id));
      await subscriber.subscribe(keys.cancelChannel);

      const done = await jobs.cancelMany([gone.id, claimed.id, running.id, "missing-job"]);
      assert.deepEqual(done, { cancelled: 2, signalled: 1 });
      assert.equal((await jobs.records.get(gone.id))?.status, "cancelled");
      assert.equal((await jobs.records.get(claimed.id))?.status, "cancelled");
      // What the claiming worker does next: start it. Refused, so it drops the job unrun.
      assert.equal(await moves.start(claimed, { startedAt: Date.now(), worker: "w", gpu: null, attempts: 1 }), null);
      assert.equal((await jobs.records.get(running.id))?.status, "running", "the worker records the cancel");
      for (let i = 0; i < 50 && published.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(published, [running.id]);
    } finally {
      subscriber.disconnect();
      await worker.close(true);
      connection.disconnect();
      await queue.close();
    }
  });
});
