import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { collect, corralEnv, runCorral, spawnCorral } from "../cli/run-corral.js";
import { API_KEY, chatLine, jsonl, startBatchStack, type BatchStack } from "./support/harness.js";

const PROGRESS_LINE =
  /^batch_[0-9a-f]+ (validating|in_progress|finalizing|completed): \d+\/\d+ done( \(\d+%\))?, \d+ failed, (-|\d+\.\d) req\/s, ETA \S+$/;

describe("corral batch run, end to end", () => {
  let stack: BatchStack;
  let dir: string;

  before(async () => {
    stack = await startBatchStack();
    dir = await mkdtemp(join(tmpdir(), "corral-batch-cli-"));
  });

  after(async () => {
    await stack?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("submits, shows plain progress lines without a terminal, and downloads the output and errors", async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `cli-${i}`);
    const input = join(dir, "in.jsonl");
    await writeFile(
      input,
      jsonl([...ids.map((id) => chatLine(id, { max_tokens: 16 })), chatLine("bad", { model: "nope" })]),
    );
    const out = join(dir, "out.jsonl");
    const errors = join(dir, "errors.jsonl");
    const result = await runCorral(
      ["batch", "run", input, "-o", out, "-e", errors, "--interval", "0.3", "--poll", "100"],
      corralEnv({ CORRAL_URL: stack.url, CORRAL_API_KEY: API_KEY }),
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "");
    const lines = result.stderr.trim().split("\n");
    assert.match(lines[0]!, /^uploaded .*in\.jsonl as file-\S+ \(\d+ bytes\)$/);
    assert.match(lines[1]!, /^batch batch_[0-9a-f]+ (validating|in_progress) \(\/v1\/chat\/completions\)$/);
    const progress = lines.filter((line) => PROGRESS_LINE.test(line));
    assert.ok(progress.length >= 2, `plain progress lines at intervals:\n${result.stderr}`);
    assert.ok(
      progress.some((line) => / req\/s/.test(line) && !/ - req\/s/.test(line)),
      "a rate once there are two samples",
    );
    assert.ok(!result.stderr.includes("\r") && !result.stderr.includes("\u001b["), "no terminal control codes");
    assert.ok(
      lines.some((line) => /completed: 30 completed, 1 failed of 31$/.test(line)),
      result.stderr,
    );
    assert.ok(lines.includes(`wrote 30 results to ${out}`));
    assert.ok(lines.includes(`wrote 1 errors to ${errors}`));
    const output = (await readFile(out, "utf8"))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    assert.deepEqual(output.map((line) => line.custom_id).sort(), [...ids].sort());
    const failed = (await readFile(errors, "utf8"))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    assert.deepEqual(
      failed.map((line) => [line.custom_id, line.error.code]),
      [["bad", "model_not_found"]],
    );
  });
});

describe("corral batch submit, status, list, wait (Ctrl-C) and cancel", () => {
  let stack: BatchStack;
  let dir: string;

  before(async () => {
    stack = await startBatchStack({ worker: false });
    dir = await mkdtemp(join(tmpdir(), "corral-batch-cli-"));
  });

  after(async () => {
    await stack?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("Ctrl-C in wait stops only the waiting and says how to resume", async () => {
    const env = corralEnv({ CORRAL_URL: stack.url, CORRAL_API_KEY: API_KEY });
    const input = join(dir, "in.jsonl");
    await writeFile(input, jsonl([chatLine("a"), chatLine("b")]));
    const submitted = await runCorral(["batch", "submit", input], env);
    assert.equal(submitted.code, 0, submitted.stderr);
    const id = submitted.stdout.trim();
    assert.match(id, /^batch_[0-9a-f]+$/);

    const status = await runCorral(["batch", "status", id], env);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`^${id} (validating|in_progress): 0/\\d done`));
    const list = await runCorral(["batch", "list"], env);
    assert.match(list.stdout, /^ID\s+STATUS\s+ENDPOINT\s+DONE\s+FAILED\s+CREATED/);
    assert.ok(list.stdout.includes(id));

    const out = join(dir, "out.jsonl");
    const waiting = spawnCorral(["batch", "wait", id, "-o", out, "--poll", "100", "--interval", "0.2"], env);
    const done = collect(waiting);
    let seen = "";
    await new Promise<void>((resolve) => {
      waiting.stderr!.on("data", (chunk: Buffer) => {
        seen += chunk.toString();
        if (PROGRESS_LINE.test(seen.split("\n")[0] ?? "")) resolve();
      });
    });
    waiting.kill("SIGINT");
    const result = await done;
    assert.equal(result.code, 130, result.stderr);
    assert.match(result.stderr, new RegExp(`stopped waiting: batch ${id} is still in_progress`));
    assert.ok(result.stderr.includes(`resume with: corral batch wait ${id} -o ${out}`), result.stderr);
    const after = await runCorral(["batch", "status", id, "--json"], env);
    assert.equal(JSON.parse(after.stdout).status, "in_progress", "the batch runs on");

    const cancelled = await runCorral(["batch", "cancel", id], env);
    assert.equal(cancelled.code, 0, cancelled.stderr);
    assert.equal(cancelled.stdout.trim(), `${id} cancelling`);
    const missing = await runCorral(["batch", "status", "batch_0000"], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /404/);
  });
});
