import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startWorker, type RunningWorker } from "@corral/worker";
import { STORIES, createHarness, type Harness } from "./support/harness.js";

/** Bytes Redis holds under `prefix` (MEMORY USAGE of every key, sampled fully). */
async function redisBytesUnder(h: Harness): Promise<number> {
  let total = 0;
  let cursor = "0";
  do {
    const [next, keys] = await h.redis.scan(cursor, "MATCH", `${h.prefix}*`, "COUNT", 1000);
    cursor = next;
    for (const key of keys) total += Number((await h.redis.call("MEMORY", "USAGE", key, "SAMPLES", "0")) ?? 0);
  } while (cursor !== "0");
  return total;
}

/**
 * Issue 16: a tenant's burst of 1 MB prompts that failed at once (context_length_exceeded
 * at the worker) grew Redis by their whole size, kept 24 h with the failed BullMQ jobs.
 * The worker now drops a failed job's payload; its record keeps the error.
 */
describe("a job that fails for good", () => {
  let h: Harness;
  let worker: RunningWorker | undefined;

  before(async () => {
    h = await createHarness({ label: "failed-payload" });
    worker = await startWorker(h.config({ CORRAL_CPU: "true", CORRAL_CPU_SLOTS: "1" }), { logger: h.logger });
  });
  after(async () => {
    await worker?.close();
    await h?.close();
  });

  test("leaves none of its payload in Redis, and keeps its error", async () => {
    const jobs = 4;
    const prompt = "Once upon a time there was a tiny model. ".repeat(5000); // ~205 KB
    const records = [];
    for (let i = 0; i < jobs; i++)
      records.push(await h.submit({ model: STORIES, prompt, max_tokens: 4, attempts: 1, stream: false }));
    for (const record of records) {
      const done = await h.waitFor(record.id, undefined, 60_000);
      assert.equal(done.status, "failed");
      assert.equal(done.error?.code, "context_length_exceeded");
      const failed = await h.jobIn(STORIES, record.id, ["failed"]);
      assert.match(failed.failedReason, /prompt is \d+ tokens/, "the failed BullMQ job keeps its reason");
      assert.ok(JSON.stringify(failed.data).length < 100, "the failed BullMQ job keeps no payload");
    }
    const bytes = await redisBytesUnder(h);
    assert.ok(
      bytes < prompt.length,
      `Redis holds ${bytes} bytes for ${jobs} failed jobs of ${prompt.length} bytes each (less than one payload expected)`,
    );
  });
});
