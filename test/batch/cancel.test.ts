import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { toFile } from "openai";
import { laneName } from "@corral/shared";
import { Queue } from "bullmq";
import {
  STORIES,
  chatLine,
  jsonl,
  readJsonl,
  startBatchStack,
  waitForBatch,
  type BatchStack,
} from "./support/harness.js";

describe("cancelling a batch mid-run", () => {
  let stack: BatchStack;

  before(async () => {
    stack = await startBatchStack();
  });

  after(async () => {
    await stack?.close();
  });

  test("waiting lines are removed, running ones stopped; the counts add up and the output holds what finished", async () => {
    const client = stack.client();
    const ids = Array.from({ length: 80 }, (_, i) => `line-${i}`);
    const file = await client.files.create({
      file: await toFile(Buffer.from(jsonl(ids.map((id) => chatLine(id, { max_tokens: 48 })))), "in.jsonl"),
      purpose: "batch",
    });
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    await waitForBatch(client, batch.id, (b) => b.request_counts!.completed >= 4);
    const cancelling = await client.batches.cancel(batch.id);
    assert.ok(["cancelling", "cancelled"].includes(cancelling.status));
    assert.ok(cancelling.cancelling_at! >= cancelling.created_at);
    const again = await client.batches.cancel(batch.id);
    assert.ok(["cancelling", "cancelled"].includes(again.status), "cancelling twice is fine");

    const done = await waitForBatch(client, batch.id);
    assert.equal(done.status, "cancelled");
    assert.ok(done.cancelled_at! >= done.cancelling_at!);
    const { total, completed, failed } = done.request_counts!;
    assert.equal(total, 80);
    assert.equal(completed + failed, total, "every line is either in the output or in the error file");
    assert.ok(completed >= 4 && completed < 80, `completed ${completed}`);

    const output = await readJsonl(client, done.output_file_id!);
    const errors = await readJsonl(client, done.error_file_id!);
    assert.equal(output.length, completed);
    assert.equal(errors.length, failed);
    const all = [...output, ...errors].map((l) => l.custom_id);
    assert.equal(new Set(all).size, all.length, "no custom_id twice");
    assert.deepEqual([...all].sort(), [...ids].sort(), "no custom_id missing");
    for (const line of output) assert.equal(line.response.status_code, 200);
    for (const line of errors) {
      assert.equal(line.response, null);
      assert.equal(line.error.code, "batch_cancelled");
    }

    const queue = new Queue(laneName(STORIES), { connection: stack.redis, prefix: stack.keys.prefix });
    try {
      const counts = await queue.getJobCounts("waiting", "prioritized", "active", "delayed");
      assert.deepEqual(counts, { waiting: 0, prioritized: 0, active: 0, delayed: 0 }, "no line is left in the lane");
    } finally {
      await queue.close();
    }
    assert.equal(
      (await client.batches.cancel(batch.id)).status,
      "cancelled",
      "cancelling a cancelled batch returns it",
    );
    await assert.rejects(
      stack.client().batches.cancel("batch_nope"),
      (error: { status?: number }) => error.status === 404,
    );
  });
});
