import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { startWorker, type RunningWorker } from "@corral/worker";
import { laneName } from "@corral/shared";
import { createHarness, type Harness } from "./support/harness.js";
import { startMonitor } from "../support/redis.js";

/**
 * What a cluster's size costs Redis per slot: its connections must not grow with the
 * number of models (lanes), and the stalled-job check must run once per interval for the
 * cluster, not once per lane per slot. On a redis-server of its own, so CLIENT LIST and
 * MONITOR see only this worker.
 */
const MODELS = 12;

describe("a worker's Redis costs as the catalog grows", () => {
  let h: Harness;
  let worker: RunningWorker | undefined;
  const models = Array.from({ length: MODELS }, (_, i) => `m${i}`);

  before(async () => {
    h = await createHarness({
      label: "scale-costs",
      ownRedis: true,
      modelsYaml: `models:\n${models.map((id) => `  - file: stories260K.gguf\n    id: ${id}\n    sequences: 1\n`).join("")}`,
    });
    worker = await startWorker(h.config({ CORRAL_CPU: "true", CORRAL_CPU_SLOTS: "2" }), { logger: h.logger });
  });
  after(async () => {
    await worker?.close();
    await h?.close();
  });

  const run = async (model: string) => {
    const record = await h.submit({ model, prompt: "Once upon a time", max_tokens: 2, temperature: 0 });
    assert.equal((await h.waitFor(record.id, undefined, 60_000)).status, "succeeded");
  };
  const connections = async () =>
    String(await h.redis.client("LIST"))
      .trim()
      .split("\n").length;

  test(`connections stay the same from one lane to ${MODELS}`, async () => {
    await run(models[0]!);
    await sleep(300);
    const oneLane = await connections();
    for (const model of models.slice(1)) await run(model);
    await sleep(300);
    const allLanes = await connections();
    // Before the lanes' Workers shared the slot's connection, each slot opened one more
    // connection per lane: 2 slots × 11 more lanes = 22 more here.
    assert.equal(allLanes, oneLane, `${oneLane} connections with one lane, ${allLanes} with ${MODELS}`);
  });

  test("a look at the lanes reads only the lanes that hold jobs, not every lane of the catalog", async () => {
    // Every lane has run a job (the test above), and none holds one now: the looks that
    // found them empty took them out of the lanes with jobs.
    await sleep(500);
    assert.deepEqual(await h.redis.zrange(h.keys.lanesWithJobs, 0, -1), []);
    const { client, monitor } = await startMonitor(h.url);
    const read = new Map<string, number>();
    monitor.on("monitor", (_time: string, args: string[], source: string) => {
      // A look's LLEN comes from a client; the stalled sweep's syncLane scripts run theirs in Lua.
      if (source === "lua" || args[0]?.toLowerCase() !== "llen" || !args[1]?.endsWith(":wait")) return;
      const lane = args[1].slice(h.keys.prefix.length + 1, -":wait".length);
      read.set(lane, (read.get(lane) ?? 0) + 1);
    });
    try {
      for (let i = 0; i < 3; i++) await run(models[0]!);
      await sleep(300);
    } finally {
      monitor.disconnect();
      client.disconnect();
    }
    const lanes = [...read.keys()];
    assert.ok(lanes.length > 0, "the slots looked at the lanes");
    // Before the set of lanes with jobs, each look read every lane that ever held a job.
    assert.deepEqual(lanes, [laneName(models[0]!)], `lanes read: ${JSON.stringify([...read])}`);
  });

  test("the stalled check runs once per lane per interval for the whole worker, not once per slot", async () => {
    const { client, monitor } = await startMonitor(h.url);
    let checks = 0;
    monitor.on("monitor", (_time: string, args: string[]) => {
      // BullMQ's moveStalledJobsToWait: 9 keys, the first the lane's `stalled` set.
      if (args[0]?.toLowerCase() === "evalsha" && args[2] === "9" && args[3]?.endsWith(":stalled")) checks += 1;
    });
    const windowMs = 4_000; // four stalled intervals (1 s in the harness)
    await sleep(windowMs);
    monitor.disconnect();
    client.disconnect();
    const intervals = windowMs / 1000;
    // One check per lane per interval, give or take an interval at each end. Two slots each
    // checking every lane, as they did, make twice as many.
    assert.ok(checks >= MODELS * (intervals - 2), `${checks} checks`);
    assert.ok(checks <= MODELS * (intervals + 1), `${checks} checks in ${intervals} intervals of ${MODELS} lanes`);
  });
});
