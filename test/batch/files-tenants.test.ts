import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { toFile } from "openai";
import {
  API_KEY,
  OTHER_KEY,
  chatLine,
  jsonl,
  startBatchStack,
  waitForBatch,
  type BatchStack,
} from "./support/harness.js";

const upload = async (stack: BatchStack, body: FormData | string, headers: Record<string, string> = {}) => {
  const response = await fetch(`${stack.baseURL}/files`, {
    method: "POST",
    headers: { authorization: `Bearer ${API_KEY}`, ...headers },
    body,
  });
  return {
    status: response.status,
    json: (await response.json()) as { error?: { code: string; param: string | null; message: string } },
  };
};

const form = (content: string, purpose: string | null = "batch", filename = "in.jsonl"): FormData => {
  const data = new FormData();
  data.append("file", new Blob([content]), filename);
  if (purpose !== null) data.append("purpose", purpose);
  return data;
};

describe("files: limits, formats and the file API", () => {
  let stack: BatchStack;

  before(async () => {
    stack = await startBatchStack({
      worker: false,
      env: { CORRAL_MAX_FILE_BYTES: "1000", CORRAL_MAX_FILE_LINES: "5" },
    });
  });

  after(async () => {
    await stack?.close();
  });

  const storedFiles = async () => readdir(join(stack.dataDir, "files")).catch(() => [] as string[]);

  test("upload, retrieve, list, download and delete through the openai client", async () => {
    const client = stack.client();
    const content = jsonl([chatLine("a"), chatLine("b")]);
    const file = await client.files.create({ file: await toFile(Buffer.from(content), "two.jsonl"), purpose: "batch" });
    assert.deepEqual(
      { ...file, id: "x", created_at: 0 },
      {
        id: "x",
        object: "file",
        bytes: Buffer.byteLength(content),
        created_at: 0,
        filename: "two.jsonl",
        purpose: "batch",
        status: "processed",
      },
    );
    assert.ok(!("expires_at" in file) && !("status_details" in file), "unset fields are left out, not null");
    assert.ok(Math.abs(file.created_at - Date.now() / 1000) < 60);
    assert.deepEqual(await client.files.retrieve(file.id), file);
    assert.equal(await (await client.files.content(file.id)).text(), content);
    const listed = await client.files.list();
    assert.ok(listed.data.some((f) => f.id === file.id));
    assert.deepEqual(await client.files.delete(file.id), { id: file.id, object: "file", deleted: true });
    await assert.rejects(client.files.retrieve(file.id), (error: { status?: number }) => error.status === 404);
    assert.ok(!(await storedFiles()).includes(file.id), "the content is gone from the store");
  });

  test("a file over the byte limit is a 413 and nothing is kept", async () => {
    const before = await storedFiles();
    const big = "x".repeat(600) + "\n" + "y".repeat(600) + "\n";
    const response = await upload(stack, form(big));
    assert.equal(response.status, 413);
    assert.equal(response.json.error?.code, "payload_too_large");
    assert.match(response.json.error!.message, /1000 bytes/);
    assert.deepEqual(await storedFiles(), before);
  });

  test("a file over the line limit is a 400 naming the limit, and nothing is kept", async () => {
    const before = await storedFiles();
    const response = await upload(stack, form("1\n2\n3\n4\n5\n6\n"));
    assert.equal(response.status, 400);
    assert.equal(response.json.error?.code, "too_many_lines");
    assert.match(response.json.error!.message, /5 lines/);
    assert.deepEqual(await storedFiles(), before);
    assert.equal((await upload(stack, form("1\n2\n3\n4\n5\n"))).status, 200, "exactly at the limit is fine");
    assert.equal((await upload(stack, form("1\n2\n3\n4\n5"))).status, 200, "a last line without newline counts once");
  });

  test("purpose must be batch; the body must be multipart with a file part", async () => {
    const before = await storedFiles();
    const missing = await upload(stack, form("{}\n", null));
    assert.equal(missing.status, 400);
    assert.equal(missing.json.error?.param, "purpose");
    const wrong = await upload(stack, form("{}\n", "fine-tune"));
    assert.equal(wrong.status, 400);
    assert.equal(wrong.json.error?.param, "purpose");
    const noFile = new FormData();
    noFile.append("purpose", "batch");
    const noFileAnswer = await upload(stack, noFile);
    assert.equal(noFileAnswer.status, 400);
    assert.equal(noFileAnswer.json.error?.param, "file");
    const json = await upload(stack, "{}", { "content-type": "application/json" });
    assert.equal(json.status, 415);
    assert.deepEqual(await storedFiles(), before);
  });
});

describe("tenant isolation of files and batches", () => {
  let stack: BatchStack;

  before(async () => {
    stack = await startBatchStack({ worker: false });
  });

  after(async () => {
    await stack?.close();
  });

  test("another tenant sees none of a tenant's files or batches (404), and cannot use or cancel them", async () => {
    const lab = stack.client();
    const other = stack.client({ apiKey: OTHER_KEY });
    const file = await lab.files.create({
      file: await toFile(Buffer.from(jsonl([chatLine("a")])), "in.jsonl"),
      purpose: "batch",
    });
    const batch = await lab.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    const notFound = (error: { status?: number }) => error.status === 404;
    await assert.rejects(other.files.retrieve(file.id), notFound);
    await assert.rejects(other.files.content(file.id), notFound);
    await assert.rejects(other.files.delete(file.id), notFound);
    await assert.rejects(
      other.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" }),
      notFound,
    );
    await assert.rejects(other.batches.retrieve(batch.id), notFound);
    await assert.rejects(other.batches.cancel(batch.id), notFound);
    assert.deepEqual((await other.files.list()).data, []);
    assert.deepEqual((await other.batches.list()).data, []);
    assert.deepEqual(
      (await lab.batches.list()).data.map((b) => b.id),
      [batch.id],
    );
    // The lab's own batch is untouched by the attempts (no worker: it waits in progress).
    const mine = await waitForBatch(lab, batch.id, (b) => b.status === "in_progress");
    assert.equal(mine.request_counts!.total, 1);
    assert.equal((await lab.batches.cancel(batch.id)).status, "cancelling");
  });
});
