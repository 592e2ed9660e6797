import { after, afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { toFile } from "openai";
import { pino } from "pino";
import { loadConfig, startScheduler, type RunningScheduler } from "@corral/scheduler";
import {
  chatLine,
  completionLine,
  jsonl,
  readJsonl,
  startBatchStack,
  waitForBatch,
  type BatchStack,
} from "./support/harness.js";

/** Every custom_id exactly once across the output and error files, and all of them in the output. */
async function assertAllOnce(stack: BatchStack, batchId: string, ids: readonly string[]): Promise<void> {
  const client = stack.client();
  const done = await waitForBatch(client, batchId, undefined, 300_000);
  assert.equal(done.status, "completed", JSON.stringify(done));
  assert.deepEqual(done.request_counts, { total: ids.length, completed: ids.length, failed: 0 });
  assert.equal(done.error_file_id, null);
  const output = await readJsonl(client, done.output_file_id!);
  const seen = output.map((l) => l.custom_id);
  assert.equal(new Set(seen).size, seen.length, "no custom_id twice");
  assert.deepEqual([...seen].sort(), [...ids].sort(), "no custom_id missing");
  for (const line of output) assert.equal(line.response.status_code, 200);
}

describe("a worker killed with SIGKILL mid-batch", () => {
  let stack: BatchStack;
  after(async () => {
    await stack?.close();
  });

  test("the batch completes, with no custom_id duplicated or missing", async () => {
    stack = await startBatchStack();
    const client = stack.client();
    const ids = Array.from({ length: 40 }, (_, i) => `w-${i}`);
    const file = await client.files.create({
      file: await toFile(Buffer.from(jsonl(ids.map((id) => completionLine(id, { max_tokens: 40 })))), "in.jsonl"),
      purpose: "batch",
    });
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/completions",
      completion_window: "24h",
    });
    await waitForBatch(client, batch.id, (b) => b.request_counts!.completed >= 5);
    const slot = stack.worker!.slots[0]!;
    assert.ok(slot.pid, "the slot has a process");
    process.kill(slot.pid, "SIGKILL");
    await assertAllOnce(stack, batch.id, ids);
    assert.ok(stack.worker!.slots[0]!.restarts >= 1, "the supervisor restarted the killed slot");
  });
});

describe("the scheduler killed mid-batch", () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  test("killed while ingesting: a restarted scheduler resumes the ingest and the batch completes", async (t) => {
    // Small chunks and no worker yet, so the kill lands mid-ingest.
    const stack = await startBatchStack({ child: true, worker: false, env: { CORRAL_BATCH_CHUNK_LINES: "5" } });
    closers.push(() => stack.close());
    const client = stack.client();
    const good = Array.from({ length: 30 }, (_, i) => `g-${i}`);
    // Many per-line faults (an unknown model) make a long ingest that needs no worker time.
    const faults = Array.from({ length: 2000 }, (_, i) => `f-${i}`);
    const lines = [...good.map((id) => chatLine(id)), ...faults.map((id) => chatLine(id, { model: "no-such-model" }))];
    const file = await client.files.create({
      file: await toFile(Buffer.from(jsonl(lines)), "in.jsonl"),
      purpose: "batch",
    });
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    const counts = stack.keys.batchCounts(batch.id);
    for (;;) {
      if (Number((await stack.redis.hget(counts, "ingested")) ?? 0) > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const [ingested, done] = await stack.redis.hmget(counts, "ingested", "ingest_done");
    assert.notEqual(done, "1", "the ingest is still going when the scheduler is killed");
    await stack.restartScheduler();
    t.diagnostic(`killed after about ${ingested} of ${lines.length} lines were ingested`);
    await stack.startWorker();
    const final = await waitForBatch(stack.client(), batch.id, undefined, 300_000);
    assert.equal(final.status, "completed");
    assert.deepEqual(final.request_counts, { total: lines.length, completed: good.length, failed: faults.length });
    const output = await readJsonl(stack.client(), final.output_file_id!);
    const errors = await readJsonl(stack.client(), final.error_file_id!);
    assert.deepEqual(
      output.map((l) => l.custom_id),
      good,
    );
    assert.deepEqual(
      errors.map((l) => l.custom_id),
      faults,
    );
    for (const line of errors) assert.equal(line.error.code, "model_not_found");
  });

  test("killed while lines run, with a second scheduler on the same Redis: the batch completes, finalized once", async () => {
    const stack = await startBatchStack({ child: true });
    closers.push(() => stack.close());
    const second: RunningScheduler = await startScheduler(loadConfig({ ...stack.schedulerEnv, CORRAL_PORT: "0" }), {
      logger: pino({ level: "silent" }),
      shutdownGraceMs: 1000,
    });
    closers.push(() => second.close());
    const client = stack.client();
    const ids = Array.from({ length: 40 }, (_, i) => `s-${i}`);
    const file = await client.files.create({
      file: await toFile(Buffer.from(jsonl(ids.map((id) => chatLine(id, { max_tokens: 24 })))), "in.jsonl"),
      purpose: "batch",
    });
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    await waitForBatch(client, batch.id, (b) => b.request_counts!.completed >= 3);
    await stack.restartScheduler();
    await assertAllOnce(stack, batch.id, ids);
    const tally = await stack.redis.hgetall(stack.keys.batchStatusCounts);
    assert.equal(tally.completed, "1", `one batch completed once: ${JSON.stringify(tally)}`);
    assert.equal(tally.finalizing ?? "0", "0");
    assert.equal(tally.in_progress ?? "0", "0");
  });
});
