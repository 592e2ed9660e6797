import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GiB, WorkerState } from "@corral/shared";
import { startWorker, type RunningWorker } from "@corral/worker";
import { repoRootDir } from "../support/models.js";
import { STORIES, createHarness, type Harness } from "./support/harness.js";

// The GPUs here are a stand-in: test/support/fake-nvidia-smi.mjs answers like nvidia-smi
// for a spec of two GPUs (8 GiB and 80 GiB). Nothing runs on a GPU: the slots' engines
// fall back to the CPU on this machine. What is tested is placement by free VRAM.
const FAKE_NVIDIA_SMI = join(repoRootDir, "test/support/fake-nvidia-smi.mjs");
const BIG = "stories-big";

describe("VRAM fitting across two GPU slots", () => {
  let h: Harness;
  let worker: RunningWorker;

  before(async () => {
    h = await createHarness({
      label: "vram-fit",
      // The same tiny file twice: once as itself, once as an alias whose operator
      // override says it needs 20 GiB of VRAM.
      modelsYaml: [
        "models:",
        "  - file: stories260K.gguf",
        "  - file: stories260K.gguf",
        `    id: ${BIG}`,
        "    vram: 20GiB",
        "",
      ].join("\n"),
    });
    const spec = join(h.modelsDir, "fake-gpus.json");
    await writeFile(
      spec,
      JSON.stringify({
        gpus: [
          { name: "NVIDIA GeForce RTX 4060 Ti (stand-in)", memory_total_mib: 8192, memory_used_mib: 0 },
          { name: "NVIDIA H100 80GB HBM3 (stand-in)", memory_total_mib: 81920, memory_used_mib: 0 },
        ],
      }),
    );
    worker = await startWorker(h.config({ CORRAL_NVIDIA_SMI: FAKE_NVIDIA_SMI }), {
      logger: h.logger,
      env: { ...process.env, CORRAL_FAKE_NVIDIA_SMI_SPEC: spec },
    });
  });

  after(async () => {
    await worker?.close();
    await h?.close();
  });

  test("one slot per GPU, pinned by index", async () => {
    assert.equal(worker.discovery.mode, "gpu");
    assert.deepEqual(
      worker.slots.map((slot) => [slot.id, slot.kind, slot.gpuIndex]),
      [
        ["test-box:gpu0", "gpu", 0],
        ["test-box:gpu1", "gpu", 1],
      ],
    );
    const state = WorkerState.parse(JSON.parse((await h.redis.get(h.keys.worker("test-box:gpu0")))!));
    assert.equal(state.mode, "gpu");
    assert.equal(state.gpus.length, 1);
    assert.equal(state.gpus[0]!.index, 0);
    assert.equal(state.gpus[0]!.memory_total_bytes, 8 * GiB);
    assert.ok(state.budget_total_bytes < 8 * GiB, "the reserve is kept out of the budget");
  });

  test("only the 80 GiB slot runs the 20 GiB model; the 8 GiB slot runs the small one", async () => {
    assert.equal(h.catalog.resolve(BIG)?.requirement_bytes, 20 * GiB);
    const big = [];
    const small = [];
    // The big model's jobs have the better priority, so the 80 GiB slot takes them first.
    for (let i = 0; i < 4; i++)
      big.push(await h.submit({ model: BIG, prompt: `Once upon a time ${i}`, max_tokens: 48, priority: 10 }));
    for (let i = 0; i < 6; i++)
      small.push(await h.submit({ model: STORIES, prompt: `A cat ${i}`, max_tokens: 48, priority: 60 }));

    for (const record of big) {
      const done = await h.waitFor(record.id, undefined, 120_000);
      assert.equal(done.status, "succeeded");
      assert.equal(done.worker, "test-box:gpu1", `the 20 GiB job ${done.id} ran on the 80 GiB GPU`);
      assert.equal(done.gpu, "1");
    }
    const ranOn = new Set<string>();
    for (const record of small) {
      const done = await h.waitFor(record.id, undefined, 120_000);
      assert.equal(done.status, "succeeded");
      ranOn.add(done.gpu!);
    }
    assert.ok(ranOn.has("0"), "the 8 GiB slot ran small jobs");
  });
});
