import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { METRIC } from "@corral/shared";
import { startStack, type OpenAIStack } from "../openai/harness.js";

/**
 * The scheduler's worker gauges: `corral_workers_online` counts slots, and
 * `corral_worker_hosts_online` hosts, which `CorralWorkerHeartbeatLost` watches so that
 * slots merging into a GPU group (fewer slots, same host) do not fire it. A real worker
 * with two CPU slots on one host.
 */
describe("worker slots and hosts on /metrics", () => {
  let stack: OpenAIStack;

  before(async () => {
    stack = await startStack({ workerEnv: { CORRAL_CPU_SLOTS: "2" } });
  });
  after(async () => {
    await stack?.close();
  });

  test("two slots of one worker are two workers online and one host", async () => {
    assert.equal(stack.worker!.slots.length, 2);
    const deadline = Date.now() + 15_000;
    let text = "";
    const value = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1]);
    // Both slots heartbeat within a second of starting.
    do {
      text = await (await fetch(`${stack.url}/metrics`)).text();
      if (value(METRIC.workersOnline) === 2) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    } while (Date.now() < deadline);
    assert.equal(value(METRIC.workersOnline), 2);
    assert.equal(value(METRIC.workerHostsOnline), 1);
  });
});
