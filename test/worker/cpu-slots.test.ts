import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { WorkerState } from "@corral/shared";
import { startWorker, type RunningWorker } from "@corral/worker";
import { STORIES, createHarness, readTokenStream, type Harness } from "./support/harness.js";

async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("a worker with two CPU slots", () => {
  let h: Harness;
  let worker: RunningWorker;

  before(async () => {
    h = await createHarness({ label: "cpu-slots" });
    worker = await startWorker(h.config({ CORRAL_CPU: "true", CORRAL_CPU_SLOTS: "2" }), { logger: h.logger });
  });

  after(async () => {
    await worker?.close();
    await h?.close();
  });

  test("starts one process per slot and heartbeats each", async () => {
    assert.deepEqual(
      worker.slots.map((slot) => slot.id),
      ["test-box:cpu0", "test-box:cpu1"],
    );
    assert.ok(worker.slots.every((slot) => slot.kind === "cpu" && slot.pid !== null && slot.state === "running"));
    for (const slot of worker.slots) {
      const raw = await h.redis.get(h.keys.worker(slot.id));
      assert.ok(raw, `heartbeat of ${slot.id}`);
      const state = WorkerState.parse(JSON.parse(raw));
      assert.equal(state.mode, "cpu");
      assert.equal(state.slot, slot.name);
      assert.equal(state.pid, slot.pid);
      assert.ok(state.budget_total_bytes > 0);
    }
    assert.deepEqual((await h.redis.smembers(h.keys.workers)).sort(), ["test-box:cpu0", "test-box:cpu1"]);
  });

  test("runs 24 jobs to success: prompts and messages, stop and max_tokens honoured, text streamed", async () => {
    const submitted = [];
    for (let i = 0; i < 8; i++)
      submitted.push({
        kind: "prompt",
        record: await h.submit({ model: STORIES, prompt: `Once upon a time ${i}`, max_tokens: 24 }),
      });
    for (let i = 0; i < 8; i++)
      submitted.push({
        kind: "messages",
        record: await h.submit({
          model: STORIES,
          messages: [{ role: "user", content: `Tell me a story about a cat number ${i}.` }],
          max_tokens: 24,
        }),
      });
    for (let i = 0; i < 4; i++)
      submitted.push({
        kind: "short",
        record: await h.submit({ model: STORIES, prompt: "Once upon a time", max_tokens: 3 }),
      });
    for (let i = 0; i < 4; i++)
      submitted.push({
        kind: "stop",
        record: await h.submit({ model: STORIES, prompt: "Once upon a time", max_tokens: 64, stop: ["girl"] }),
      });

    const workers = new Set<string>();
    for (const { kind, record } of submitted) {
      const done = await h.waitFor(record.id, undefined, 120_000);
      assert.equal(done.status, "succeeded", `${kind} job ${done.id}: ${JSON.stringify(done.error)}`);
      const result = done.result!;
      assert.ok(result.text.length > 0, `${kind} job has text`);
      assert.ok(result.usage.prompt_tokens > 0);
      assert.ok(result.usage.completion_tokens > 0);
      assert.ok(done.started_at! >= done.created_at && done.finished_at! >= done.started_at!);
      assert.ok(result.timings.queue_ms >= 0 && result.timings.generation_ms >= 0);
      assert.equal(done.attempts, 1);
      assert.match(done.worker ?? "", /^test-box:cpu[01]$/);
      assert.equal(done.gpu, null);
      workers.add(done.worker!);
      if (kind === "short") {
        assert.equal(result.usage.completion_tokens, 3);
        assert.equal(result.finish_reason, "length");
      }
      if (kind === "stop") {
        assert.equal(result.finish_reason, "stop");
        assert.ok(!result.text.includes("girl"), `stop sequence cut the text: ${JSON.stringify(result.text)}`);
        assert.ok(result.usage.completion_tokens < 64);
      }
      // The worker writes the record first, then the stream's end entry.
      const stream = await until(
        () => readTokenStream(h.redis, h.keys, done.id),
        (s) => s.end !== null,
      );
      assert.equal(stream.text, result.text, "the token stream holds the text");
      assert.equal(stream.end?.status, "succeeded");
      assert.equal(stream.end?.finish_reason, result.finish_reason);
      assert.deepEqual(JSON.parse(stream.end!.usage!), result.usage);
    }
    assert.deepEqual([...workers].sort(), ["test-box:cpu0", "test-box:cpu1"], "both slots ran jobs");
  });

  test("serves the slots' metrics aggregated on /metrics", async () => {
    const text = await (await fetch(worker.metricsUrl)).text();
    const completed = /^corral_jobs_completed_total\{model="stories260K",status="succeeded"\} (\d+)$/m.exec(text);
    assert.equal(Number(completed?.[1]), 24);
    assert.match(text, /^corral_slot_up\{slot="test-box:cpu0"\} 1$/m);
    assert.match(text, /^corral_slot_up\{slot="test-box:cpu1"\} 1$/m);
    assert.match(text, /^corral_model_loaded\{model="stories260K",slot="test-box:cpu[01]"\} 1$/m);
    assert.match(text, /^corral_tokens_generated_total\{model="stories260K"\} \d+$/m);
    assert.match(text, /^corral_job_duration_seconds_count\{model="stories260K",phase="total"\} 24$/m);
    assert.match(text, /^corral_time_to_first_token_seconds_count\{model="stories260K"\} 24$/m);
    assert.ok(!text.includes(h.prefix), "no job ids in labels");
  });

  test("close() drains the slots and removes their heartbeats", async () => {
    await worker.close();
    await worker.close();
    assert.ok(worker.slots.every((slot) => slot.state === "stopped"));
    assert.equal(await h.redis.exists(h.keys.worker("test-box:cpu0"), h.keys.worker("test-box:cpu1")), 0);
  });
});
