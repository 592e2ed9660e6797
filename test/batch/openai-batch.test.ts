import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { toFile } from "openai";
import {
  API_KEY,
  STORIES,
  chatLine,
  completionLine,
  jsonl,
  readJsonl,
  startBatchStack,
  waitForBatch,
  type BatchStack,
} from "./support/harness.js";

describe("the Batch API through the official openai client, on a real scheduler and worker", () => {
  let stack: BatchStack;

  before(async () => {
    stack = await startBatchStack();
  });

  after(async () => {
    await stack?.close();
  });

  test("200 lines (a chat batch and a completion batch) complete; every custom_id comes back once with an OpenAI body", async () => {
    const client = stack.client();
    const chatIds = Array.from({ length: 100 }, (_, i) => `chat-${i}`);
    const completionIds = Array.from({ length: 100 }, (_, i) => `cmpl-${i}`);
    const chatFile = await client.files.create({
      file: await toFile(Buffer.from(jsonl(chatIds.map((id) => chatLine(id)))), "chat.jsonl"),
      purpose: "batch",
    });
    assert.match(chatFile.id, /^file-/);
    assert.equal(chatFile.object, "file");
    assert.equal(chatFile.purpose, "batch");
    assert.equal(chatFile.filename, "chat.jsonl");
    assert.ok(chatFile.bytes > 0);
    const completionFile = await client.files.create({
      file: await toFile(Buffer.from(jsonl(completionIds.map((id) => completionLine(id)))), "completions.jsonl"),
      purpose: "batch",
    });

    const chatBatch = await client.batches.create({
      input_file_id: chatFile.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
      metadata: { run: "openai-test" },
    });
    assert.match(chatBatch.id, /^batch_/);
    assert.equal(chatBatch.object, "batch");
    assert.ok(["validating", "in_progress"].includes(chatBatch.status));
    assert.deepEqual(chatBatch.metadata, { run: "openai-test" });
    assert.equal(chatBatch.expires_at! - chatBatch.created_at, 24 * 3600);
    const completionBatch = await client.batches.create({
      input_file_id: completionFile.id,
      endpoint: "/v1/completions",
      completion_window: "24h",
    });

    const seen = new Set<string>();
    for (const [batch, ids, kind] of [
      [chatBatch, chatIds, "chat"],
      [completionBatch, completionIds, "completion"],
    ] as const) {
      const done = await waitForBatch(client, batch.id, (b) => {
        if (b.status === "in_progress") seen.add(b.status);
        return ["completed", "failed", "cancelled", "expired"].includes(b.status);
      });
      assert.equal(done.status, "completed", JSON.stringify(done.errors));
      assert.deepEqual(done.request_counts, { total: 100, completed: 100, failed: 0 });
      assert.equal(done.error_file_id, null);
      assert.ok(done.in_progress_at! >= done.created_at);
      assert.ok(done.finalizing_at! >= done.in_progress_at!);
      assert.ok(done.completed_at! >= done.finalizing_at!);
      const output = await readJsonl(client, done.output_file_id!);
      assert.equal(output.length, 100);
      assert.deepEqual(output.map((line) => line.custom_id).sort(), [...ids].sort());
      for (const line of output) {
        assert.match(line.id, /^batch_req_/);
        assert.equal(line.error, null);
        assert.equal(line.response.status_code, 200);
        assert.match(line.response.request_id, /^batch_/);
        const body = line.response.body;
        assert.equal(body.model, STORIES);
        assert.equal(body.usage.completion_tokens, 8);
        assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + 8);
        assert.equal(body.choices.length, 1);
        assert.equal(body.choices[0].finish_reason, "length");
        if (kind === "chat") {
          assert.match(body.id, /^chatcmpl-/);
          assert.equal(body.object, "chat.completion");
          assert.equal(body.choices[0].message.role, "assistant");
          assert.equal(typeof body.choices[0].message.content, "string");
          assert.deepEqual(Object.keys(body).sort(), ["choices", "created", "id", "model", "object", "usage"]);
        } else {
          assert.match(body.id, /^cmpl-/);
          assert.equal(body.object, "text_completion");
          assert.equal(typeof body.choices[0].text, "string");
        }
      }
      const outputFile = await client.files.retrieve(done.output_file_id!);
      assert.equal(outputFile.purpose, "batch_output");
    }
    const listed = await client.batches.list({ limit: 10 });
    assert.deepEqual(
      listed.data.map((b) => b.id),
      [completionBatch.id, chatBatch.id],
    );
  });

  test("a batch line's body equals what the online endpoint returns for the same request (but id and created)", async () => {
    const client = stack.client();
    const line = chatLine("same", { max_tokens: 6 });
    const file = await client.files.create({
      file: await toFile(Buffer.from(jsonl([line])), "one.jsonl"),
      purpose: "batch",
    });
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    const done = await waitForBatch(client, batch.id);
    const [out] = await readJsonl(client, done.output_file_id!);
    const online = await client.chat.completions.create(line.body as never);
    const strip = (body: Record<string, unknown>) => ({ ...body, id: "x", created: 0 });
    assert.deepEqual(strip(out.response.body), strip(JSON.parse(JSON.stringify(online))));
  });

  test("an embeddings batch answers exactly what POST /v1/embeddings answers", async () => {
    const client = stack.client();
    const body = { model: STORIES, input: ["Once upon a time", "The dog ran"] };
    const lines = [
      { custom_id: "e1", method: "POST", url: "/v1/embeddings", body },
      { custom_id: "e2", method: "POST", url: "/v1/embeddings", body: { ...body, encoding_format: "base64" } },
    ];
    const file = await client.files.create({
      file: await toFile(Buffer.from(jsonl(lines)), "emb.jsonl"),
      purpose: "batch",
    });
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/embeddings",
      completion_window: "24h",
    });
    const done = await waitForBatch(client, batch.id);
    assert.equal(done.status, "completed", JSON.stringify(done));
    const output = await readJsonl(client, done.output_file_id!);
    const online = await fetch(`${stack.baseURL}/embeddings`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    }).then((r) => r.json());
    assert.deepEqual(output[0].response.body, online);
    assert.equal(output[1].response.body.data[0].object, "embedding");
    assert.equal(typeof output[1].response.body.data[0].embedding, "string", "base64 as asked");
  });

  test("/metrics reports batches by status and the lines ingested", async () => {
    const text = await (await fetch(`${stack.url}/metrics`)).text();
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? NaN);
    assert.ok(value(/^corral_batches\{status="completed"\} (\d+)$/m) >= 4, text);
    assert.equal(value(/^corral_batches\{status="failed"\} (\d+)$/m), 0);
    assert.ok(value(/^corral_batch_lines_ingested_total (\d+)$/m) >= 203);
    assert.equal(value(/^corral_batch_requests\{state="pending"\} (\d+)$/m), 0);
  });
});
