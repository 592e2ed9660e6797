import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GiB, WorkerState, defaultReserveBytes } from "@corral/shared";
import { startWorker, type RunningWorker } from "@corral/worker";
import { repoRootDir } from "../support/models.js";
import { STORIES, createHarness, type Harness } from "./support/harness.js";

// Three stand-in GPUs of 8 GiB (test/support/fake-nvidia-smi.mjs); GPUs 0 and 1 run as one
// group slot (CORRAL_GPU_GROUPS=0+1). The engines fall back to the CPU on this machine, so
// llama.cpp runs the jobs for real but the CUDA split itself is not exercised here
// (bench/gpu.sh on a multi-GPU host does that). What is tested: the group slot exists
// with both GPUs in CUDA_VISIBLE_DEVICES' place, its budget is both GPUs' memory less a
// reserve on each, and a model too big for one GPU runs on it and nowhere else.
const FAKE_NVIDIA_SMI = join(repoRootDir, "test/support/fake-nvidia-smi.mjs");
const BIG = "stories-12g";
const GPU_MIB = 8192;

describe("a slot over a group of two GPUs", () => {
  let h: Harness;
  let worker: RunningWorker;

  before(async () => {
    h = await createHarness({
      label: "gpu-group",
      modelsYaml: [
        "models:",
        "  - file: stories260K.gguf",
        "  - file: stories260K.gguf",
        `    id: ${BIG}`,
        "    vram: 12GiB",
        "",
      ].join("\n"),
    });
    const spec = join(h.modelsDir, "fake-gpus.json");
    await writeFile(
      spec,
      JSON.stringify({
        gpus: [0, 1, 2].map(() => ({
          name: "NVIDIA RTX 4000 Ada (stand-in)",
          memory_total_mib: GPU_MIB,
          memory_used_mib: 0,
        })),
      }),
    );
    worker = await startWorker(h.config({ CORRAL_NVIDIA_SMI: FAKE_NVIDIA_SMI, CORRAL_GPU_GROUPS: "0+1" }), {
      logger: h.logger,
      env: { ...process.env, CORRAL_FAKE_NVIDIA_SMI_SPEC: spec },
    });
  });

  after(async () => {
    await worker?.close();
    await h?.close();
  });

  test("the group slot takes GPUs 0 and 1 and budgets their memory less a reserve on each", async () => {
    assert.deepEqual(
      worker.slots.map((slot) => [slot.id, slot.gpuIndex]),
      [
        ["test-box:gpu0+1", 0],
        ["test-box:gpu2", 2],
      ],
    );
    const state = WorkerState.parse(JSON.parse((await h.redis.get(h.keys.worker("test-box:gpu0+1")))!));
    assert.deepEqual(
      state.gpus.map((gpu) => gpu.index),
      [0, 1],
    );
    const perGpu = GPU_MIB * 1024 ** 2;
    assert.equal(state.budget_total_bytes, 2 * (perGpu - defaultReserveBytes(perGpu)));
    const single = WorkerState.parse(JSON.parse((await h.redis.get(h.keys.worker("test-box:gpu2")))!));
    assert.ok(single.budget_total_bytes < 12 * GiB && state.budget_total_bytes > 12 * GiB);
  });

  test("the 12 GiB model runs on the group, real llama.cpp end to end; the small model runs too", async () => {
    const big = [];
    const small = [];
    for (let i = 0; i < 3; i++) {
      big.push(await h.submit({ model: BIG, prompt: `Once upon a time ${i}`, max_tokens: 24 }));
      small.push(await h.submit({ model: STORIES, prompt: `A dog ${i}`, max_tokens: 24 }));
    }
    for (const record of big) {
      const done = await h.waitFor(record.id, undefined, 120_000);
      assert.equal(done.status, "succeeded");
      assert.equal(done.worker, "test-box:gpu0+1", `${done.id} ran on the group`);
      assert.ok((done.result?.usage.completion_tokens ?? 0) > 0, "it generated tokens");
    }
    for (const record of small) assert.equal((await h.waitFor(record.id, undefined, 120_000)).status, "succeeded");
  });
});
