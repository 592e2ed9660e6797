import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startBatchStack, type BatchStack } from "../batch/support/harness.js";
import { killHard, startCluster, type ClusterSet } from "../support/redis-topologies.js";
import { checkStreamingAndWaits, runBatchThroughFault } from "./support/fault-run.js";

describe("a Cluster master SIGKILLed mid-batch (the master of Corral's one hash slot)", () => {
  let cluster: ClusterSet | undefined;
  let stack: BatchStack | undefined;

  after(async () => {
    try {
      await stack?.close();
    } finally {
      await cluster?.stop();
    }
  });

  test("its replica takes the slot over; no custom_id or acknowledged job is lost, duplicated or failed", async () => {
    cluster = await startCluster();
    stack = await startBatchStack({
      redisUrl: cluster.url,
      env: { CORRAL_REDIS_WAIT_REPLICAS: "1", CORRAL_REDIS_WAIT_TIMEOUT_MS: "1000" },
    });
    const victim = await cluster.masterOf(stack.keys.catalog);
    const before = await checkStreamingAndWaits(stack);
    assert.ok(before.chunks > 0, "a streamed chat sent text");
    assert.equal(before.waited, "succeeded", "a waiting submit was woken by its job-events message");
    const report = await runBatchThroughFault(stack, {
      label: "cluster",
      submitForMs: 10_000,
      fault: () => killHard(victim.process),
    });
    const owner = await cluster.masterOf(stack.keys.catalog).catch(() => null);
    assert.notEqual(owner?.port, victim.port, "another node serves the slot");
    assert.equal(report.lost, 0, "no custom_id lost");
    assert.equal(report.duplicated, 0, "no custom_id twice");
    assert.equal(report.failed, 0, "no line failed (attempts remained)");
    assert.ok(report.acknowledged > 0, "some submits were acknowledged around the failover");
    assert.equal(report.acknowledgedLost, 0, "no acknowledged job lost");
    assert.equal(report.acknowledgedFailed, 0, "no acknowledged job failed");
  });
});
