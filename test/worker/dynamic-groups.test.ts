import { after, afterEach, before, describe, test } from "node:test";
import { Worker } from "bullmq";
import assert from "node:assert/strict";
import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  DynamicGroups,
  discoverGpus,
  discoverTopology,
  loadConfig,
  planSlots,
  type GroupEvent,
  type SlotSpec,
} from "@corral/worker";
import { FairQueue, defaultReserveBytes, laneName } from "@corral/shared";
import { repoRootDir } from "../support/models.js";
import { STORIES, createHarness, type Harness } from "./support/harness.js";

// The supervisor's half of dynamic groups, on real Redis (the catalog and lanes the
// scheduler's code writes) with the slots' processes replaced by a record of what it asks
// of them. The GPUs come from the nvidia-smi stand-in: the real 2× RTX A5000 `-q -x`
// capture (made idle), and a synthetic 4-GPU host with a PCIe topology matrix (synthetic:
// no such capture exists). "40 GB" and "4 GB" are stories260K with a `vram` override.
const FAKE_NVIDIA_SMI = join(repoRootDir, "test/support/fake-nvidia-smi.mjs");
const BIG = "stories-40g";
const SMALL = "stories-4g";
const A5000_FREE_MIB = 24564 - 450;

interface Call {
  op: "retire" | "stop" | "start";
  slot: string;
  spec?: SlotSpec;
}

describe("dynamic groups: choosing, draining, forming and splitting a group", () => {
  let h: Harness;
  let groups: DynamicGroups | null = null;

  before(async () => {
    h = await createHarness({
      label: "dyn-groups",
      modelsYaml: [
        "models:",
        `  - file: ${STORIES}.gguf`,
        `    id: ${BIG}`,
        "    vram: 40GB",
        `  - file: ${STORIES}.gguf`,
        `    id: ${SMALL}`,
        "    vram: 4GB",
        "",
      ].join("\n"),
    });
  });
  afterEach(async () => {
    await groups?.close();
    groups = null;
    // Each test starts with empty lanes.
    for (const model of [BIG, SMALL]) await h.queue(model).obliterate({ force: true });
    await h.redis.del(h.keys.lanesWithJobs);
  });
  after(async () => {
    await h?.close();
  });

  /** The host's slots as the supervisor plans them, from the stand-in with `spec`. */
  async function host(spec: object, env: Record<string, string> = {}) {
    const path = join(h.modelsDir, `gpus-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(path, JSON.stringify(spec));
    const smi = {
      nvidiaSmiPath: FAKE_NVIDIA_SMI,
      timeoutMs: 10_000,
      env: { ...process.env, CORRAL_FAKE_NVIDIA_SMI_SPEC: path },
    };
    const config = loadConfig({ CORRAL_WORKER_ID: "lab1", ...env });
    const discovery = await discoverGpus(smi);
    return { config, slots: planSlots(config, discovery, 16), topology: await discoverTopology(smi) };
  }

  function start(planned: Awaited<ReturnType<typeof host>>, groupDrainMs: number) {
    const calls: Call[] = [];
    const events: [string, GroupEvent][] = [];
    groups = new DynamicGroups({
      redis: h.redis,
      keys: h.keys,
      logger: h.logger,
      host: "lab1",
      reservations: new Map(Object.entries(planned.config.reserveGpus).map(([i, m]) => [Number(i), m])),
      topology: planned.topology,
      slots: planned.slots,
      reserveBytes: null,
      groupDrainMs,
      keepAliveMs: 5 * 60_000,
      control: {
        retire: (slot) => calls.push({ op: "retire", slot }),
        stop: (slot) => calls.push({ op: "stop", slot }),
        start: (spec) => calls.push({ op: "start", slot: spec.name, spec }),
      },
    });
    for (const name of ["draining", "bound", "formed", "split", "abandoned"])
      groups.on(name, (event: GroupEvent) => events.push([name, event]));
    return { groups, calls, events };
  }

  const idleA5000 = {
    xml: "dual-rtx-a5000_query-xml.xml",
    gpus: [0, 1].map(() => ({ memory_used_mib: 0, memory_free_mib: A5000_FREE_MIB })),
  };

  test("small jobs form no group; a waiting 40 GB job on 2× A5000 gets the group of two, which drains at once", async () => {
    const planned = await host(idleA5000);
    assert.deepEqual(
      planned.slots.map((slot) => slot.name),
      ["gpu0", "gpu1"],
    );
    const { groups, calls, events } = start(planned, 60_000);
    await h.submit({ model: SMALL, prompt: "a" });
    await groups.check();
    assert.equal(calls.length, 0, "a 4 GB job fits one A5000: no group");

    await h.submit({ model: BIG, prompt: "b" });
    await groups.check();
    assert.deepEqual(
      calls.map((call) => [call.op, call.slot]),
      [
        ["retire", "gpu0"],
        ["retire", "gpu1"],
      ],
    );
    assert.deepEqual(
      events.map(([name, event]) => [name, event.group, event.model, event.members]),
      [["draining", "gpu0+1", BIG, ["gpu0", "gpu1"]]],
    );
    await groups.check();
    assert.equal(calls.length, 2, "a group already forming for the model: nothing more");
  });

  test("the bound: members still claiming when groupDrainMs is up are stopped; the group slot starts once both are gone, and the GPUs' own slots come back when it retires", async () => {
    const planned = await host(idleA5000);
    const { groups, calls, events } = start(planned, 300);
    await h.submit({ model: BIG, prompt: "b" });
    await groups.check();
    // gpu0 went idle and retired; gpu1 keeps running small jobs past the bound.
    groups.slotExited("gpu0");
    await once(groups, "bound");
    assert.deepEqual(
      calls.map((call) => [call.op, call.slot]),
      [
        ["retire", "gpu0"],
        ["retire", "gpu1"],
        ["stop", "gpu1"],
      ],
      "only the member still up is stopped",
    );
    const [, draining] = events.find(([name]) => name === "draining")!;
    const [, bound] = events.find(([name]) => name === "bound")!;
    assert.ok(bound.at - draining.at >= 300, "the bound is groupDrainMs after the group was chosen");

    groups.slotExited("gpu1");
    const started = calls.at(-1)!;
    assert.equal(started.op, "start");
    const spec = started.spec!;
    assert.equal(spec.id, "lab1:gpu0+1");
    assert.deepEqual(spec.devices, ["0", "1"]);
    assert.deepEqual(
      spec.gpus.map((gpu) => gpu.index),
      [0, 1],
    );
    // It claims only what no single A5000 holds: more than one GPU's total less its reserve.
    const oneGpu = planned.slots[0]!.gpus[0]!.memory_total_bytes!;
    assert.equal(spec.dynamicGroup?.minRequirementBytes, oneGpu - defaultReserveBytes(oneGpu));
    assert.equal(spec.dynamicGroup?.retireWhenIdleMs, 5 * 60_000);
    assert.deepEqual(
      events.map(([name]) => name),
      ["draining", "bound", "formed"],
    );

    await groups.check();
    assert.equal(calls.length, 4, "the formed group serves the waiting model: no second group");

    groups.slotExited("gpu0+1");
    assert.deepEqual(
      calls.slice(4).map((call) => [call.op, call.slot, call.spec?.devices]),
      [
        ["start", "gpu0", ["0"]],
        ["start", "gpu1", ["1"]],
      ],
    );
    assert.deepEqual(events.at(-1)![0], "split");
  });

  test("a group still draining when its job no longer waits (another host's group took it) is given up: the GPUs' slots start again as they leave", async () => {
    const planned = await host(idleA5000);
    const { groups, calls, events } = start(planned, 60_000);
    const big = await h.submit({ model: BIG, prompt: "b" });
    await groups.check();
    groups.slotExited("gpu0"); // idle: it left at once; gpu1 still runs a job
    // A group on another host takes the job (fair release, then BullMQ's getNextJob).
    await new FairQueue(h.redis, h.keys).releaseForClaim(laneName(BIG), 1, Date.now());
    const elsewhere = new Worker(laneName(BIG), null, { connection: h.redis, prefix: h.keys.prefix, autorun: false });
    try {
      assert.equal((await elsewhere.getNextJob("other-host:gpu0+1:1", { block: false }))?.id, big.id);
    } finally {
      await elsewhere.close(true);
    }
    await groups.check();
    assert.deepEqual(
      calls.map((call) => [call.op, call.slot]),
      [
        ["retire", "gpu0"],
        ["retire", "gpu1"],
        ["start", "gpu0"],
      ],
      "gpu0, already gone, starts again at once",
    );
    groups.slotExited("gpu1");
    assert.deepEqual(calls.at(-1)?.slot, "gpu1", "gpu1 starts again once it has left");
    assert.deepEqual(calls.at(-1)?.spec?.devices, ["1"]);
    assert.deepEqual(
      events.map(([name]) => name),
      ["draining", "abandoned"],
      "no group slot started",
    );
    await h.submit({ model: BIG, prompt: "again" });
    await groups.check();
    assert.deepEqual(
      calls.slice(-2).map((call) => [call.op, call.slot]),
      [
        ["retire", "gpu0"],
        ["retire", "gpu1"],
      ],
      "a new job for the model gets a new group",
    );
  });

  test("a synthetic 4-GPU host: with GPU 0 reserved, the 40 GB model gets the PIX pair 2+3, not the lower SYS pair 1+2", async () => {
    const planned = await host(
      {
        gpus: [0, 1, 2, 3].map(() => ({
          name: "NVIDIA RTX A5000 (synthetic)",
          memory_total_mib: 24564,
          memory_used_mib: 0,
        })),
        topo: "synthetic-4gpu-pcie_topo-matrix.txt",
      },
      { CORRAL_RESERVE_GPUS: `0=${SMALL}` },
    );
    assert.ok(planned.topology !== null, "the topology matrix was read");
    const { groups, calls } = start(planned, 60_000);
    await h.submit({ model: BIG, prompt: "b" });
    await groups.check();
    assert.deepEqual(
      calls.map((call) => [call.op, call.slot]),
      [
        ["retire", "gpu2"],
        ["retire", "gpu3"],
      ],
    );
  });
});
