import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { toFile } from "openai";
import { chatLine, jsonl, readJsonl, startBatchStack, waitForBatch, type BatchStack } from "./support/harness.js";

describe("batch lines over the body limit", () => {
  let stack: BatchStack;

  before(async () => {
    stack = await startBatchStack({ env: { CORRAL_BODY_LIMIT: "4kb" } });
  });

  after(async () => {
    await stack?.close();
  });

  test("a line over CORRAL_BODY_LIMIT goes to the error file with its line number; the other lines run", async () => {
    const client = stack.client();
    const big = chatLine("big", { messages: [{ role: "user", content: "x".repeat(10_000) }] });
    const text = jsonl([chatLine("good-1"), big, chatLine("good-2")]);
    const file = await client.files.create({ file: await toFile(Buffer.from(text), "in.jsonl"), purpose: "batch" });
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    const done = await waitForBatch(client, batch.id);
    assert.equal(done.status, "completed", JSON.stringify(done.errors));
    assert.deepEqual(done.request_counts, { total: 3, completed: 2, failed: 1 });
    const output = await readJsonl(client, done.output_file_id!);
    assert.deepEqual(
      output.map((l) => l.custom_id),
      ["good-1", "good-2"],
    );
    const [error, ...others] = await readJsonl(client, done.error_file_id!);
    assert.equal(others.length, 0);
    assert.equal(error.custom_id, "line-2");
    assert.equal(error.response.status_code, 413);
    assert.equal(error.response.body.error.code, "payload_too_large");
    assert.match(error.response.body.error.message, /^Line 2 is \d+ bytes, over the limit of 4096 bytes/);
  });
});
