import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { toFile } from "openai";
import {
  chatLine,
  completionLine,
  jsonl,
  readJsonl,
  startBatchStack,
  waitForBatch,
  type BatchStack,
} from "./support/harness.js";

/** Issue 16: a batch line whose prompt cannot fit the context goes to the error file at ingest (it never runs). */
describe("batch lines whose prompt cannot fit the model's context", () => {
  let stack: BatchStack;

  before(async () => {
    stack = await startBatchStack();
  });
  after(async () => {
    await stack?.close();
  });

  test("land in the error file with context_length_exceeded, while the good line completes", async () => {
    const client = stack.client();
    const lines = [
      chatLine("good"),
      chatLine("long-chat", { messages: [{ role: "user", content: "a story ".repeat(400) }] }),
      completionLine("long-prompt", { prompt: "x ".repeat(400) }),
      completionLine("no-room", { prompt: "Once upon a time", max_tokens: 250 }),
    ];
    const chat = await client.files.create({
      file: await toFile(Buffer.from(jsonl(lines.slice(0, 2))), "chat.jsonl"),
      purpose: "batch",
    });
    const completions = await client.files.create({
      file: await toFile(Buffer.from(jsonl(lines.slice(2))), "completions.jsonl"),
      purpose: "batch",
    });
    const chatBatch = await client.batches.create({
      input_file_id: chat.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    const completionBatch = await client.batches.create({
      input_file_id: completions.id,
      endpoint: "/v1/completions",
      completion_window: "24h",
    });
    const chatDone = await waitForBatch(client, chatBatch.id);
    const completionDone = await waitForBatch(client, completionBatch.id);
    assert.deepEqual(chatDone.request_counts, { total: 2, completed: 1, failed: 1 });
    assert.deepEqual(completionDone.request_counts, { total: 2, completed: 0, failed: 2 });
    const errors = [
      ...(await readJsonl(client, chatDone.error_file_id!)),
      ...(await readJsonl(client, completionDone.error_file_id!)),
    ];
    assert.deepEqual(errors.map((l) => l.custom_id).sort(), ["long-chat", "long-prompt", "no-room"]);
    for (const line of errors) {
      assert.equal(line.response.status_code, 400, line.custom_id);
      assert.equal(line.response.body.error.code, "context_length_exceeded", line.custom_id);
      assert.equal(line.response.body.error.param, line.custom_id === "long-chat" ? "messages" : "prompt");
      assert.deepEqual(line.error, { code: "context_length_exceeded", message: line.response.body.error.message });
    }
  });
});
