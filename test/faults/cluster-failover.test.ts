import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { killHard, startCluster, type RedisNodeProcess } from "../support/redis-topologies.js";
import { runFaultCase } from "./support/fault-run.js";

describe("a Cluster master SIGKILLed mid-batch (the master of Corral's one hash slot)", () => {
  test("its replica takes the slot over; no custom_id or acknowledged job is lost, duplicated or failed", async (t) => {
    let victim: RedisNodeProcess | undefined;
    const { topology: cluster, stack } = await runFaultCase(
      t,
      () => startCluster(),
      async (cluster, stack) => {
        victim = await cluster.masterOf(stack.keys.catalog);
        await killHard(victim.process);
      },
      { label: "cluster", submitForMs: 10_000 },
    );
    assert.ok(victim, "a master was killed");
    const owner = await cluster.masterOf(stack.keys.catalog).catch(() => null);
    assert.notEqual(owner?.port, victim.port, "another node serves the slot");
  });
});
