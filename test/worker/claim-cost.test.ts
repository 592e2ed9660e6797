import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { startWorker, type RunningWorker } from "@corral/worker";
import { laneName, type JobRecord } from "@corral/shared";
import { STORIES, createHarness, type Harness } from "./support/harness.js";
import { startMonitor } from "../support/redis.js";

/**
 * What claiming costs Redis on a slot with several sequences. A lone job at an idle slot
 * should cost what it costs a BullMQ worker: the claim that finds it, one that finds the
 * lane empty, and one more for the marker BullMQ leaves behind every claim, not one claim
 * per free sequence. A burst should still fill every sequence. Claims are counted with
 * MONITOR: BullMQ's moveToActive is the script called with 11 keys, the first of them the
 * lane's wait list (moveToFinished has 14).
 */
describe("claims on a slot with four sequences", () => {
  let h: Harness;
  let worker: RunningWorker | undefined;
  let client: Redis | undefined;
  let monitor: Redis | undefined;
  let claims = 0;

  before(async () => {
    h = await createHarness({
      label: "claim-cost",
      ownRedis: true,
      modelsYaml: "models:\n  - file: stories260K.gguf\n    sequences: 4\n",
    });
    const waitKey = `${h.keys.prefix}:${laneName(STORIES)}:wait`;
    ({ client, monitor } = await startMonitor(h.url));
    monitor.on("monitor", (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === "evalsha" && args[2] === "11" && args[3] === waitKey) claims += 1;
    });
    worker = await startWorker(h.config({ CORRAL_CPU: "true", CORRAL_CPU_SLOTS: "1" }), { logger: h.logger });
    // The model loads with the first job; claims are counted from the next one.
    const first = await h.submit({ model: STORIES, prompt: "Once upon a time", max_tokens: 2, temperature: 0 });
    assert.equal((await h.waitFor(first.id, undefined, 60_000)).status, "succeeded");
  });
  after(async () => {
    monitor?.disconnect();
    client?.disconnect();
    await worker?.close();
    await h?.close();
  });

  test("jobs arriving one at a time cost at most three claims each", async () => {
    const jobs = 8;
    claims = 0;
    for (let i = 0; i < jobs; i++) {
      const record = await h.submit({ model: STORIES, prompt: `Once upon a time ${i}`, max_tokens: 2, temperature: 0 });
      assert.equal((await h.waitFor(record.id, undefined, 30_000)).status, "succeeded");
    }
    // MONITOR delivers asynchronously: let the last commands arrive.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(claims >= jobs, `every job was claimed (${claims} claims seen)`);
    // The claim loop before this test came cost 141 claims for these 8 jobs.
    assert.ok(claims <= 3 * jobs + 1, `${claims} claims for ${jobs} jobs`);
  });

  test("a burst of jobs still runs on all four sequences at once", async () => {
    const records: JobRecord[] = [];
    for (let i = 0; i < 8; i++)
      records.push(await h.submit({ model: STORIES, prompt: `One day ${i}`, max_tokens: 96, temperature: 0 }));
    const finals = await Promise.all(records.map((r) => h.waitFor(r.id, undefined, 60_000)));
    assert.deepEqual(
      finals.map((r) => r.status),
      Array(8).fill("succeeded"),
    );
    // The most jobs running at one moment: at the latest start among the first four.
    const spans = finals.map((r) => [r.started_at!, r.finished_at!] as const);
    const overlap = Math.max(...spans.map(([at]) => spans.filter(([s, f]) => s <= at && at < f).length));
    assert.equal(overlap, 4, `at most ${overlap} jobs ran at once`);
  });
});
