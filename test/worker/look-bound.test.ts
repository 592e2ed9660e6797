import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startWorker, type RunningWorker } from "@corral/worker";
import { laneName } from "@corral/shared";
import { createHarness, type Harness } from "./support/harness.js";
import { startMonitor } from "../support/redis.js";

/**
 * A look at the lanes reads a bounded number of lanes, however many hold work: with no
 * model loaded, `lookLanes` (8) of the 32 that waited longest, never all 40. Counted with
 * MONITOR on a redis-server of its own: a look starts with its one ZRANGE of the lanes
 * with jobs, and reads each lane it looks at with one pipeline starting `HEXISTS meta paused`.
 */
const MODELS = 40;
const LOOK_LANES = 8;

describe("the lanes one look reads", () => {
  let h: Harness;
  let worker: RunningWorker | undefined;
  const models = Array.from({ length: MODELS }, (_, i) => `m${String(i).padStart(2, "0")}`);

  before(async () => {
    h = await createHarness({
      label: "look-bound",
      ownRedis: true,
      modelsYaml: `models:\n${models.map((id) => `  - file: stories260K.gguf\n    id: ${id}\n    sequences: 1\n`).join("")}`,
    });
  });
  after(async () => {
    await worker?.close();
    await h?.close();
  });

  test(`with ${MODELS} lanes holding work, a look reads ${LOOK_LANES} of them, and every job still runs`, async () => {
    // One job per model, queued before any worker runs, oldest first.
    const ids: string[] = [];
    for (const model of models) {
      const record = await h.submit({ model, prompt: "Once upon a time", max_tokens: 1, temperature: 0 });
      ids.push(record.id);
    }
    const waiting = await h.redis.zrange(h.keys.lanesWithJobs, 0, -1);
    assert.equal(waiting.length, MODELS, "every lane is in the set of lanes with jobs");

    const { client, monitor } = await startMonitor(h.url);
    // Per client, the looks it made: the lanes each one read, in order.
    const looks = new Map<string, Set<string>[]>();
    const metaSuffix = ":meta";
    monitor.on("monitor", (_time: string, args: string[], source: string) => {
      if (source === "lua") return;
      const command = args[0]?.toLowerCase();
      const mine = looks.get(source) ?? [];
      if (command === "zrange" && args[1] === h.keys.lanesWithJobs) {
        mine.push(new Set());
        looks.set(source, mine);
      } else if (command === "hexists" && args[1]?.endsWith(metaSuffix) && args[2] === "paused" && mine.length > 0) {
        mine.at(-1)!.add(args[1].slice(h.keys.prefix.length + 1, -metaSuffix.length));
      }
    });
    try {
      worker = await startWorker(h.config({ CORRAL_CPU: "true", CORRAL_CPU_SLOTS: "1" }), { logger: h.logger });
      for (const id of ids) assert.equal((await h.waitFor(id, undefined, 120_000)).status, "succeeded");
    } finally {
      monitor.disconnect();
      client.disconnect();
    }

    const allLooks = [...looks.values()].flat().filter((lanes) => lanes.size > 0);
    assert.ok(allLooks.length > 0, "the slot looked at the lanes");
    // The first look that read lanes: nothing was loaded yet, so it read only the others,
    // drawn from the 4 × 8 that waited longest (the first 32 submitted).
    const first = [...allLooks[0]!];
    assert.equal(first.length, LOOK_LANES, `the first look read ${first.length} lanes: ${first.join(", ")}`);
    const oldest = new Set(models.slice(0, 4 * LOOK_LANES).map(laneName));
    for (const lane of first) assert.ok(oldest.has(lane), `${lane} is not among the 32 that waited longest`);
    // No look read all the lanes with work; before the bound, each read every one of them.
    const widest = Math.max(...allLooks.map((lanes) => lanes.size));
    assert.ok(widest < MODELS / 2, `the widest look read ${widest} of ${MODELS} lanes`);
  });
});
