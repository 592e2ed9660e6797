import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startBatchStack, type BatchStack } from "../batch/support/harness.js";
import { killHard, startSentinelSet, type SentinelSet } from "../support/redis-topologies.js";
import { checkStreamingAndWaits, runBatchThroughFault } from "./support/fault-run.js";

describe("a Sentinel failover (master SIGKILLed) mid-batch, with WAIT 1 on acknowledged writes", () => {
  let set: SentinelSet | undefined;
  let stack: BatchStack | undefined;

  after(async () => {
    try {
      await stack?.close();
    } finally {
      await set?.stop();
    }
  });

  test("the replica takes over; no custom_id or acknowledged job is lost, duplicated or failed", async () => {
    set = await startSentinelSet();
    stack = await startBatchStack({
      redisUrl: set.url,
      env: { CORRAL_REDIS_WAIT_REPLICAS: "1", CORRAL_REDIS_WAIT_TIMEOUT_MS: "1000" },
    });
    const before = await checkStreamingAndWaits(stack);
    assert.ok(before.chunks > 0, "a streamed chat sent text");
    assert.equal(before.waited, "succeeded", "a waiting submit was woken by its job-events message");
    const report = await runBatchThroughFault(stack, {
      label: "sentinel",
      submitForMs: 8000,
      fault: async () => {
        console.log(`# sentinel replica port ${set!.replica.port} prefix ${stack!.prefix}`);
        await killHard(set!.master.process);
      },
    });
    assert.equal(await set.currentMasterPort(), set.replica.port, "the sentinels promoted the replica");
    assert.equal(report.lost, 0, "no custom_id lost");
    assert.equal(report.duplicated, 0, "no custom_id twice");
    assert.equal(report.failed, 0, "no line failed (attempts remained)");
    assert.ok(report.acknowledged > 0, "some submits were acknowledged around the failover");
    assert.equal(report.acknowledgedLost, 0, "no acknowledged job lost");
    assert.equal(report.acknowledgedFailed, 0, "no acknowledged job failed");
  });
});
