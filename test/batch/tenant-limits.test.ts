import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { toFile } from "openai";
import { Queue } from "bullmq";
import { laneName } from "@corral/shared";
import {
  API_KEY,
  STORIES,
  chatLine,
  jsonl,
  readJsonl,
  startBatchStack,
  waitForBatch,
  type BatchStack,
} from "./support/harness.js";

const CAP = 5;

/** Pending batch lines count against the tenant's queued limits; unfinished batches are limited per tenant. */
describe("a tenant's batches and its queued limits", () => {
  let stack: BatchStack;

  before(async () => {
    // No worker at first: nothing leaves the queue until the test starts one.
    stack = await startBatchStack({
      worker: false,
      env: {
        CORRAL_MAX_QUEUED_PER_TENANT: String(CAP),
        CORRAL_MAX_ACTIVE_BATCHES_PER_TENANT: "2",
        CORRAL_BATCH_CHUNK_LINES: "4",
      },
    });
  });

  after(async () => {
    await stack?.close();
  });

  test("a batch of a tenant near its cap queues lines only up to the cap, waits, and completes every line once jobs finish", async () => {
    const client = stack.client();
    // Three native jobs: two places left.
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${stack.url}/v1/jobs`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ model: STORIES, prompt: `Once upon a time ${i}`, max_tokens: 8, temperature: 0 }),
      });
      assert.equal(response.status, 202, await response.text());
    }
    const ids = Array.from({ length: 12 }, (_, i) => `line-${i}`);
    const file = await client.files.create({
      file: await toFile(Buffer.from(jsonl(ids.map((id) => chatLine(id)))), "in.jsonl"),
      purpose: "batch",
    });
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    const small = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });

    // The same file behind a third unfinished batch: over the limit of 2.
    const third = await fetch(`${stack.url}/v1/batches`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" }),
    });
    assert.equal(third.status, 429);
    const refusal = (await third.json()) as { error: { code: string; message: string } };
    assert.equal(refusal.error.code, "too_many_batches");
    assert.match(refusal.error.message, /CORRAL_MAX_ACTIVE_BATCHES_PER_TENANT/);

    // Both batches validate and start ingesting; over many loop ticks (100 ms) the lane
    // never holds more of the tenant's jobs than its cap.
    await waitForBatch(client, batch.id, (b) => b.status === "in_progress");
    const queue = new Queue(laneName(STORIES), { connection: stack.redis, prefix: stack.keys.prefix });
    try {
      for (let i = 0; i < 10; i++) {
        // Held for fair claim: the lane's delayed set (no worker runs here).
        const total = (await queue.getJobCounts("delayed")).delayed ?? 0;
        assert.ok(total <= CAP, `the lane holds ${total} jobs of a tenant capped at ${CAP}`);
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
      const lane = await queue.getJobCounts("delayed");
      assert.equal(lane.delayed ?? 0, CAP, "the lines fill the places left, no more");
    } finally {
      await queue.close();
    }

    // A worker runs the jobs: ingest resumes as places come free, and both batches finish with every line.
    await stack.startWorker();
    for (const id of [batch.id, small.id]) {
      const done = await waitForBatch(client, id);
      assert.equal(done.status, "completed");
      assert.deepEqual(done.request_counts, { total: 12, completed: 12, failed: 0 });
      const output = await readJsonl(client, done.output_file_id!);
      assert.deepEqual(output.map((line) => line.custom_id).sort(), [...ids].sort());
    }

    // Finished batches no longer count: a new one is accepted.
    const next = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    assert.equal(next.status, "validating");
    await client.batches.cancel(next.id);
  });
});
