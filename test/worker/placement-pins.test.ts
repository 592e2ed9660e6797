import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startWorker, type RunningWorker } from "@corral/worker";
import { repoRootDir } from "../support/models.js";
import { STORIES, createHarness, type Harness } from "./support/harness.js";

// Two stand-in GPUs (test/support/fake-nvidia-smi.mjs), both with room for every model
// here; the engines fall back to the CPU on this machine. What is tested: a slot never
// claims a model that models.yaml pins elsewhere, nor one its GPU is not reserved for.
const FAKE_NVIDIA_SMI = join(repoRootDir, "test/support/fake-nvidia-smi.mjs");
const PINNED = "stories-on-h100";

describe("placement pins and GPU reservations in the claim", () => {
  let h: Harness;
  let worker: RunningWorker;

  before(async () => {
    h = await createHarness({
      label: "placement-pins",
      modelsYaml: [
        "models:",
        "  - file: stories260K.gguf",
        "  - file: stories260K.gguf",
        `    id: ${PINNED}`,
        "    placement:",
        "      gpu_names: [h100]",
        "",
      ].join("\n"),
    });
    const spec = join(h.modelsDir, "fake-gpus.json");
    await writeFile(
      spec,
      JSON.stringify({
        gpus: [
          { name: "NVIDIA RTX A5000 (stand-in)", memory_total_mib: 24564, memory_used_mib: 0 },
          { name: "NVIDIA H100 80GB HBM3 (stand-in)", memory_total_mib: 81920, memory_used_mib: 0 },
        ],
      }),
    );
    // GPU 1 (the H100) is kept for the pinned model: the unpinned one may run only on GPU 0.
    worker = await startWorker(h.config({ CORRAL_NVIDIA_SMI: FAKE_NVIDIA_SMI, CORRAL_RESERVE_GPUS: `1=${PINNED}` }), {
      logger: h.logger,
      env: { ...process.env, CORRAL_FAKE_NVIDIA_SMI_SPEC: spec },
    });
  });

  after(async () => {
    await worker?.close();
    await h?.close();
  });

  test("the pinned model runs only on the H100; the other model only on the GPU not reserved", async () => {
    assert.deepEqual(h.catalog.resolve(PINNED)?.placement, { gpu_names: ["h100"] });
    const pinned = [];
    const other = [];
    for (let i = 0; i < 5; i++) {
      pinned.push(await h.submit({ model: PINNED, prompt: `Once upon a time ${i}`, max_tokens: 24 }));
      other.push(await h.submit({ model: STORIES, prompt: `A cat ${i}`, max_tokens: 24 }));
    }
    for (const record of pinned) {
      const done = await h.waitFor(record.id, undefined, 120_000);
      assert.equal(done.status, "succeeded");
      assert.equal(done.worker, "test-box:gpu1", `${done.id} ran on the H100`);
    }
    for (const record of other) {
      const done = await h.waitFor(record.id, undefined, 120_000);
      assert.equal(done.status, "succeeded");
      assert.equal(done.worker, "test-box:gpu0", `${done.id} stayed off the reserved GPU`);
    }
  });
});
