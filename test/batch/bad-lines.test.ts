import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { toFile } from "openai";
import { chatLine, jsonl, readJsonl, startBatchStack, waitForBatch, type BatchStack } from "./support/harness.js";

describe("batch input files with bad lines", () => {
  let stack: BatchStack;

  before(async () => {
    stack = await startBatchStack();
  });

  after(async () => {
    await stack?.close();
  });

  const upload = async (text: string) =>
    stack.client().files.create({ file: await toFile(Buffer.from(text), "in.jsonl"), purpose: "batch" });

  test("structural faults fail the whole batch, naming each line; nothing runs", async () => {
    const client = stack.client();
    const lines = [
      JSON.stringify(chatLine("a")),
      "{not json",
      JSON.stringify(chatLine("b")),
      JSON.stringify(chatLine("a")), // duplicate of line 1
      JSON.stringify({ ...chatLine("c"), url: "/v1/completions" }),
      JSON.stringify({ ...chatLine("d"), method: "GET" }),
      "",
      JSON.stringify({ method: "POST", url: "/v1/chat/completions", body: {} }),
    ];
    const file = await upload(lines.join("\n") + "\n");
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    const done = await waitForBatch(client, batch.id);
    assert.equal(done.status, "failed");
    assert.ok(done.failed_at! >= done.created_at);
    assert.equal(done.output_file_id, null);
    assert.equal(done.error_file_id, null);
    const errors = done.errors!.data!.map((e) => [e.line, e.code, e.param]);
    assert.deepEqual(errors, [
      [2, "invalid_json_line", null],
      [4, "duplicate_custom_id", "custom_id"],
      [5, "mismatched_url", "url"],
      [6, "invalid_method", "method"],
      [8, "missing_custom_id", "custom_id"],
    ]);
    assert.match(done.errors!.data![1]!.message!, /line 1/);
    assert.equal(await stack.redis.exists(stack.keys.job(`${batch.id}_1`)), 0, "no line was queued");
  });

  test("per-line faults land in the error file with the online endpoint's error, while the good lines complete", async () => {
    const client = stack.client();
    const lines = [
      chatLine("good-1"),
      chatLine("unknown-model", { model: "no-such-model" }),
      chatLine("too-long", { max_tokens: 100_000 }),
      { custom_id: "no-messages", method: "POST", url: "/v1/chat/completions", body: { model: "stories260K" } },
      chatLine("two-choices", { n: 2 }),
      chatLine("functions", { functions: [{ name: "f" }] }),
      chatLine("good-2", { stream: true }),
    ];
    const file = await upload(jsonl(lines));
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    const done = await waitForBatch(client, batch.id);
    assert.equal(done.status, "completed");
    assert.deepEqual(done.request_counts, { total: 7, completed: 2, failed: 5 });
    const output = await readJsonl(client, done.output_file_id!);
    assert.deepEqual(
      output.map((l) => l.custom_id),
      ["good-1", "good-2"],
    );
    const errors = await readJsonl(client, done.error_file_id!);
    const byId = new Map(errors.map((l) => [l.custom_id, l]));
    assert.deepEqual([...byId.keys()], ["unknown-model", "too-long", "no-messages", "two-choices", "functions"]);
    const expect = (id: string, status: number, code: string, param: string | null) => {
      const line = byId.get(id)!;
      assert.equal(line.response.status_code, status, id);
      assert.equal(line.response.body.error.code, code, id);
      assert.equal(line.response.body.error.param, param, id);
      assert.equal(line.response.body.error.type, "invalid_request_error", id);
      assert.deepEqual(line.error, { code, message: line.response.body.error.message }, id);
      assert.match(line.id, /^batch_req_/);
    };
    expect("unknown-model", 404, "model_not_found", "model");
    assert.match(byId.get("unknown-model")!.response.body.error.message, /stories260K/, "lists the models that exist");
    expect("too-long", 400, "context_length_exceeded", "max_tokens");
    expect("no-messages", 400, "invalid_value", "messages");
    expect("two-choices", 400, "unsupported_value", "n");
    expect("functions", 400, "unsupported_parameter", "functions");
  });

  test("bad requests to POST /v1/batches are 4xx naming the field", async () => {
    const client = stack.client();
    const file = await upload(jsonl([chatLine("x")]));
    await assert.rejects(
      client.batches.create({ input_file_id: "file-nope", endpoint: "/v1/chat/completions", completion_window: "24h" }),
      (error: { status?: number; param?: string }) => error.status === 404 && error.param === "input_file_id",
    );
    await assert.rejects(
      client.batches.create({
        input_file_id: file.id,
        endpoint: "/v1/responses" as never,
        completion_window: "24h",
      }),
      (error: { status?: number; param?: string }) => error.status === 400 && error.param === "endpoint",
    );
    await assert.rejects(
      client.batches.create({
        input_file_id: file.id,
        endpoint: "/v1/chat/completions",
        completion_window: "1h" as never,
      }),
      (error: { status?: number; param?: string }) => error.status === 400 && error.param === "completion_window",
    );
    await assert.rejects(
      client.batches.retrieve("batch_doesnotexist"),
      (error: { status?: number }) => error.status === 404,
    );
  });
});
