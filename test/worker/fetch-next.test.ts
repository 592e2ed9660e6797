import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { startWorker, type RunningWorker } from "@corral/worker";
import { laneName } from "@corral/shared";
import { STORIES, createHarness, type Harness } from "./support/harness.js";
import { startMonitor } from "../support/redis.js";

/**
 * A slot that finishes a job while its lane still has work takes the next job in the call
 * that completes this one (BullMQ's fetch-next). Seen from Redis: a completion without
 * fetch-next ends with BullMQ's "drained" check (LLEN of the lane's wait list), one with
 * it does not. Watched with MONITOR, filtered to commands scripts ran on this test's keys.
 */
describe("a slot with queued work completes and claims in one call", () => {
  let h: Harness;
  let worker: RunningWorker | undefined;
  let client: Redis | undefined;
  let monitor: Redis | undefined;

  before(async () => {
    h = await createHarness({
      label: "fetch-next",
      ownRedis: true,
      modelsYaml: "models:\n  - file: stories260K.gguf\n    sequences: 1\n",
    });
  });
  after(async () => {
    monitor?.disconnect();
    client?.disconnect();
    await worker?.close();
    await h?.close();
  });

  test("12 queued jobs on one sequence: each succeeds once, and most completions claim the next job", async () => {
    const jobs = 12;
    const records = [];
    for (let i = 0; i < jobs; i++)
      records.push(await h.submit({ model: STORIES, prompt: `Once upon a time ${i}`, max_tokens: 4, temperature: 0 }));

    const waitKey = `${h.keys.prefix}:${laneName(STORIES)}:wait`;
    let drainedChecks = 0;
    ({ client, monitor } = await startMonitor(h.url));
    // MONITOR shows each script call, then the commands it runs (a script runs alone).
    let inCompletion = false;
    monitor.on("monitor", (_time: string, args: string[], source: string) => {
      const command = args[0]?.toLowerCase();
      // BullMQ's moveToFinished is the script called with 14 keys (fair claim's release,
      // which may also read the wait list's length, has 6).
      if (source !== "lua" && (command === "evalsha" || command === "eval")) inCompletion = args[2] === "14";
      // Inside the completion script (the claim loop's own look at the lanes also reads the wait list).
      if (source === "lua" && inCompletion && command === "llen" && args[1] === waitKey) drainedChecks += 1;
    });

    worker = await startWorker(h.config({ CORRAL_CPU: "true", CORRAL_CPU_SLOTS: "1" }), { logger: h.logger });
    const finals = await Promise.all(records.map((r) => h.waitFor(r.id, undefined, 60_000)));
    assert.deepEqual(
      finals.map((r) => r.status),
      Array(jobs).fill("succeeded"),
    );
    assert.ok(
      finals.every((r) => r.attempts === 1),
      "each job ran once",
    );
    // The first claims come from a full look at the lanes, and the last completion finds
    // the lane empty; in between, completions hand the sequence straight to the next job.
    assert.ok(drainedChecks >= 1, "the last completion found the lane empty (the check is seen at all)");
    assert.ok(drainedChecks <= 3, `completions that ran the drained check: ${drainedChecks} of ${jobs}`);
  });
});
