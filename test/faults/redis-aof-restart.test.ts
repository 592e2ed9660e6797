import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startBatchStack, type BatchStack } from "../batch/support/harness.js";
import { startAofRedis, type AofRedis } from "../support/redis-topologies.js";
import { runBatchThroughFault } from "./support/fault-run.js";

describe("a single Redis with AOF (appendfsync always) SIGKILLed and restarted mid-batch", () => {
  let redis: AofRedis | undefined;
  let stack: BatchStack | undefined;

  after(async () => {
    try {
      await stack?.close();
    } finally {
      await redis?.stop();
    }
  });

  test("it comes back from its AOF; no custom_id or acknowledged job is lost, duplicated or failed", async () => {
    redis = await startAofRedis();
    stack = await startBatchStack({ redisUrl: redis.url });
    const report = await runBatchThroughFault(stack, {
      label: "aof",
      submitForMs: 5000,
      // restart() SIGKILLs the server and starts it again on the same port and AOF.
      fault: () => redis!.node.restart(),
    });
    assert.equal(report.lost, 0, "no custom_id lost");
    assert.equal(report.duplicated, 0, "no custom_id twice");
    assert.equal(report.failed, 0, "no line failed (attempts remained)");
    assert.equal(report.acknowledgedLost, 0, "no acknowledged job lost");
    assert.equal(report.acknowledgedFailed, 0, "no acknowledged job failed");
  });
});
