import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startBatchStack, type BatchStack } from "../batch/support/harness.js";
import { runBatchThroughFault } from "./support/fault-run.js";

const KILLS = 5;

describe(`a slot SIGKILLed ${KILLS} times during a batch`, () => {
  let stack: BatchStack | undefined;

  after(async () => {
    await stack?.close();
  });

  test("the batch completes with no custom_id lost, duplicated or failed (attempts 10)", async () => {
    // Each kill costs the jobs on the slot one attempt; 10 leaves room for a line caught by several kills.
    stack = await startBatchStack({ env: { CORRAL_JOB_ATTEMPTS: "10" } });
    const worker = stack.worker!;
    const report = await runBatchThroughFault(stack, {
      label: "slot-kills",
      lines: 80,
      strikeAfter: 5,
      async fault() {
        for (let kill = 0; kill < KILLS; kill++) {
          const slot = worker.slots[0]!;
          for (let waited = 0; !slot.pid && waited < 30_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
          assert.ok(slot.pid, "the slot is up again");
          process.kill(slot.pid, "SIGKILL");
          // Let the restarted slot take jobs again before the next kill.
          await new Promise((r) => setTimeout(r, 2500));
        }
      },
    });
    assert.ok(worker.slots[0]!.restarts >= KILLS, "the supervisor restarted the slot after each kill");
    assert.equal(report.lost, 0, "no custom_id lost");
    assert.equal(report.duplicated, 0, "no custom_id twice");
    assert.equal(report.failed, 0, "no line failed (attempts remained)");
  });
});
