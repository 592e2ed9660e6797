import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GiB, WorkerState, defaultReserveBytes, type JobRecord } from "@corral/shared";
import { startWorker, type GroupEvent, type RunningWorker } from "@corral/worker";
import { repoRootDir } from "../support/models.js";
import { STORIES, createHarness, type Harness } from "./support/harness.js";

// Dynamic groups end to end: real Redis, real slot processes, real llama.cpp. The GPUs are
// the nvidia-smi stand-in's (test/support/fake-nvidia-smi.mjs); the engines find no CUDA
// here and run on the CPU, so what runs is the group's lifecycle (form, run, split) and its
// claims, not the CUDA split across devices (bench/gpu.sh checks that on a multi-GPU host).
// The big and small models are stories260K with a `vram` override in models.yaml.
const FAKE_NVIDIA_SMI = join(repoRootDir, "test/support/fake-nvidia-smi.mjs");

/** Records a running worker's group events in order. */
function recordEvents(worker: RunningWorker): [string, GroupEvent][] {
  const events: [string, GroupEvent][] = [];
  for (const name of ["draining", "bound", "formed", "split"])
    worker.groups.on(name, (event: GroupEvent) => events.push([name, event]));
  return events;
}

/** Waits until `ok()` holds, looking every 100 ms; throws with `what` after `timeoutMs` (a hang guard, not a timing check). */
async function until(ok: () => boolean | Promise<boolean>, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function standInGpus(h: Harness, spec: object): Promise<string> {
  const path = join(h.modelsDir, "fake-gpus.json");
  await writeFile(path, JSON.stringify(spec));
  return path;
}

describe("a dynamic group's lifecycle on two stand-in GPUs: it forms, runs a real job, and splits after keep-alive", () => {
  const BIG = "stories-12g";
  let h: Harness;
  let worker: RunningWorker;
  let events: [string, GroupEvent][];

  before(async () => {
    h = await createHarness({
      label: "group-life",
      modelsYaml: [
        "models:",
        `  - file: ${STORIES}.gguf`,
        `  - file: ${STORIES}.gguf`,
        `    id: ${BIG}`,
        "    vram: 12GiB",
        "",
      ].join("\n"),
    });
    const spec = await standInGpus(h, {
      gpus: [0, 1].map(() => ({ name: "NVIDIA RTX 4000 Ada (stand-in)", memory_total_mib: 8192, memory_used_mib: 0 })),
    });
    worker = await startWorker(
      h.config({ CORRAL_NVIDIA_SMI: FAKE_NVIDIA_SMI, CORRAL_KEEP_ALIVE: "2s", CORRAL_GROUP_DRAIN_MS: "30s" }),
      { logger: h.logger, env: { ...process.env, CORRAL_FAKE_NVIDIA_SMI_SPEC: spec }, groupCheckMs: 200 },
    );
    events = recordEvents(worker);
  });

  after(async () => {
    await worker?.close();
    await h?.close();
  });

  test("form, run, split, and the GPUs' own slots run jobs again", async () => {
    assert.deepEqual(
      worker.slots.map((slot) => slot.id),
      ["test-box:gpu0", "test-box:gpu1"],
      "one slot per GPU to start with",
    );
    // Heartbeats tell the scheduler what a group here could hold (so it does not answer 503).
    const perGpu = 8 * GiB;
    let raw: string | null = null;
    await until(async () => (raw = await h.redis.get(h.keys.worker("test-box:gpu0"))) !== null, "gpu0's heartbeat");
    const beat = WorkerState.parse(JSON.parse(raw!));
    assert.equal(beat.group_budget_total_bytes, 2 * (perGpu - defaultReserveBytes(perGpu)));
    const big = await h.submit({ model: BIG, prompt: "Once upon a time", max_tokens: 24 });
    const done = await h.waitFor(big.id, undefined, 180_000);
    assert.equal(done.status, "succeeded", JSON.stringify(done.error));
    assert.equal(done.worker, "test-box:gpu0+1", "the 12 GiB job ran on the group of the two 8 GiB GPUs");
    assert.ok((done.result?.usage.completion_tokens ?? 0) > 0, "llama.cpp generated tokens");

    if (!events.some(([name]) => name === "split")) await once(worker.groups, "split");
    assert.deepEqual(
      events.map(([name, event]) => [name, event.group, event.model]),
      [
        ["draining", "gpu0+1", BIG],
        ["formed", "gpu0+1", BIG],
        ["split", "gpu0+1", BIG],
      ],
      "idle GPU slots retire at once: the bound is not needed",
    );
    const at = (name: string) => events.find(([n]) => n === name)![1].at;
    assert.ok(at("formed") <= done.started_at!, "the job started on the group once it formed");
    assert.ok(at("split") >= done.finished_at!, "the group split after its job");

    await until(
      () =>
        worker.slots.map((slot) => `${slot.id}:${slot.state}`).join(",") ===
        "test-box:gpu0:running,test-box:gpu1:running",
      "the GPUs' own slots to run again",
    );
    // The retired group slot is gone from corral_slot_up (not "down": no CorralSlotDown alert).
    const metrics = await (await fetch(worker.metricsUrl)).text();
    const up = metrics.split("\n").filter((line) => line.startsWith("corral_slot_up{"));
    assert.deepEqual(up.sort(), ['corral_slot_up{slot="test-box:gpu0"} 1', 'corral_slot_up{slot="test-box:gpu1"} 1']);
    const small = await h.submit({ model: STORIES, prompt: "A dog", max_tokens: 16 });
    const smallDone = await h.waitFor(small.id, undefined, 120_000);
    assert.equal(smallDone.status, "succeeded");
    assert.match(smallDone.worker ?? "", /^test-box:gpu[01]$/);
  });
});

describe("a 40 GB model on 2× 24 GB A5000 does not starve behind a stream of 4 GB jobs", () => {
  const BIG = "stories-40gb";
  const SMALL = "stories-4gb";
  const GROUP_DRAIN_MS = 3000;
  let h: Harness;
  let gpuBox: RunningWorker;
  let cpuBox: RunningWorker;
  let events: [string, GroupEvent][];

  before(async () => {
    h = await createHarness({
      label: "group-bound",
      modelsYaml: [
        "models:",
        `  - file: ${STORIES}.gguf`,
        `    id: ${BIG}`,
        "    vram: 40GB",
        `  - file: ${STORIES}.gguf`,
        `    id: ${SMALL}`,
        "    vram: 4GB",
        // Four at once per slot: a GPU slot kept busy by the stream is seldom idle, so the
        // bound (not an idle moment) is what ends its claims.
        "    sequences: 4",
        "",
      ].join("\n"),
    });
    // The real 2× RTX A5000 capture, idle (its memory in use set to 0).
    const spec = await standInGpus(h, {
      xml: "dual-rtx-a5000_query-xml.xml",
      gpus: [0, 1].map(() => ({ memory_used_mib: 0, memory_free_mib: 24564 - 450 })),
    });
    gpuBox = await startWorker(
      h.config({
        CORRAL_NVIDIA_SMI: FAKE_NVIDIA_SMI,
        CORRAL_WORKER_ID: "gpu-box",
        CORRAL_KEEP_ALIVE: "2s",
        CORRAL_GROUP_DRAIN_MS: `${GROUP_DRAIN_MS}`,
      }),
      { logger: h.logger, env: { ...process.env, CORRAL_FAKE_NVIDIA_SMI_SPEC: spec }, groupCheckMs: 200 },
    );
    events = recordEvents(gpuBox);
    // Another machine of the lab: one CPU slot, where the 4 GB model (in RAM) keeps running.
    cpuBox = await startWorker(h.config({ CORRAL_CPU: "true", CORRAL_WORKER_ID: "cpu-box" }), { logger: h.logger });
  });

  after(async () => {
    await gpuBox?.close();
    await cpuBox?.close();
    await h?.close();
  });

  test("the group of two forms within the bound, the big job runs on it, and the 4 GB jobs run on throughout", async () => {
    const small: JobRecord[] = [];
    let feeding = true;
    // Keeps eight 4 GB jobs queued at all times until told to stop.
    const feeder = (async () => {
      while (feeding) {
        const states = await Promise.all(small.map((record) => h.records.get(record.id)));
        const queued = states.filter((record) => record?.status === "queued").length;
        for (let i = queued; i < 8; i++)
          small.push(await h.submit({ model: SMALL, prompt: `A cat ${small.length}`, max_tokens: 96 }));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    const records = () => Promise.all(small.map((record) => h.records.get(record.id)));
    try {
      // Both GPUs (and the CPU box) serve the small model before the big job comes.
      await until(async () => {
        const ran = new Set((await records()).filter((r) => r?.status === "succeeded").map((r) => r!.worker));
        return ran.has("gpu-box:gpu0") && ran.has("gpu-box:gpu1");
      }, "small jobs on both GPUs");

      const big = await h.submit({ model: BIG, prompt: "Once upon a time", max_tokens: 24 });
      await h.waitFor(big.id, (record) => record.status !== "queued", 180_000);
      feeding = false;
      await feeder;
      const done = await h.waitFor(big.id, undefined, 120_000);
      assert.equal(done.status, "succeeded", JSON.stringify(done.error));
      assert.equal(done.worker, "gpu-box:gpu0+1", "a group of two");

      const finals = await Promise.all(small.map((record) => h.waitFor(record.id, undefined, 120_000)));
      assert.ok(
        finals.every((record) => record.status === "succeeded"),
        "every 4 GB job succeeded",
      );
      const at = (name: string) => events.find(([n]) => n === name)?.[1].at;
      const draining = at("draining")!;
      const formed = at("formed")!;
      const bound = at("bound");
      assert.ok(draining !== undefined && formed !== undefined, JSON.stringify(events));
      // The bound: the members were stopped GROUP_DRAIN_MS after the group was chosen, unless
      // both retired at an idle moment before.
      if (bound !== undefined) assert.ok(bound - draining >= GROUP_DRAIN_MS && bound <= formed);
      const deadline = bound ?? formed;
      const onMembers = finals.filter((r) => r.worker === "gpu-box:gpu0" || r.worker === "gpu-box:gpu1");
      assert.ok(
        onMembers.every((r) => r.started_at! <= deadline || r.started_at! >= (at("split") ?? Infinity)),
        "no 4 GB job started on the group's GPUs from the bound until the group split",
      );
      assert.ok(
        onMembers.every((r) => r.started_at! >= formed || r.finished_at! <= formed),
        "the group formed once the jobs running on its GPUs had ended",
      );
      assert.ok(formed <= done.started_at!, "the big job started on the formed group");
      const arrivedWhileWaiting = finals.filter((r) => r.created_at > draining && r.created_at < done.started_at!);
      assert.ok(arrivedWhileWaiting.length > 0, "4 GB jobs kept arriving while the big job waited");
      assert.ok(
        finals.some(
          (r) => r.worker === "cpu-box:cpu0" && r.started_at! >= draining && r.started_at! <= done.finished_at!,
        ),
        "the 4 GB model kept running on the other slot while the group formed and ran",
      );
    } finally {
      feeding = false;
      await feeder;
    }
  });
});
