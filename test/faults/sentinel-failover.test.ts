import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { killHard, startSentinelSet } from "../support/redis-topologies.js";
import { runFaultCase } from "./support/fault-run.js";

describe("a Sentinel failover (master SIGKILLed) mid-batch, with WAIT 1 on acknowledged writes", () => {
  test("the replica takes over; no custom_id or acknowledged job is lost, duplicated or failed", async (t) => {
    const { topology: set } = await runFaultCase(
      t,
      () => startSentinelSet(),
      async (set, stack) => {
        console.log(`# sentinel replica port ${set.replica.port} prefix ${stack.prefix}`);
        await killHard(set.master.process);
      },
      { label: "sentinel", submitForMs: 8000 },
    );
    assert.equal(await set.currentMasterPort(), set.replica.port, "the sentinels promoted the replica");
  });
});
