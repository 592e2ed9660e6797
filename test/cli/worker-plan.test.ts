import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { WorkerPlan } from "@corral/worker";
import { FileType, LLAMA2_70B, LLAMA2_7B, writeSyntheticGguf } from "../support/gguf-writer.js";
import { repoRootDir } from "../support/models.js";
import { STACK_LINE, corralEnv, runCorral } from "./run-corral.js";

const FAKE_NVIDIA_SMI = resolve(repoRootDir, "test/support/fake-nvidia-smi.mjs");
const GiB = 1024 ** 3;

/**
 * `corral worker --plan --json` against the executable nvidia-smi stand-in, with a models
 * folder of synthetic (header-only, sparse) GGUFs: Llama-2-70B Q4_K_M (a 41 GB file) and
 * Llama-2-7B Q4_K_M.
 */
describe("corral worker --plan", () => {
  let dir: string;
  let models: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "corral-plan-"));
    models = join(dir, "models");
    await import("node:fs/promises").then((fs) => fs.mkdir(models));
    await writeSyntheticGguf(join(models, "llama-2-70b.Q4_K_M.gguf"), {
      ...LLAMA2_70B,
      fileType: FileType.MOSTLY_Q4_K_M,
    });
    await writeSyntheticGguf(join(models, "llama-2-7b.Q4_K_M.gguf"), {
      ...LLAMA2_7B,
      fileType: FileType.MOSTLY_Q4_K_M,
    });
    await writeModelsYaml("");
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function writeModelsYaml(bigPlacement: string): Promise<void> {
    await writeFile(
      join(models, "models.yaml"),
      [
        "models:",
        "  - file: llama-2-70b.Q4_K_M.gguf",
        "    id: llama-70b",
        "    context_size: 2048",
        "    sequences: 1",
        bigPlacement,
        "  - file: llama-2-7b.Q4_K_M.gguf",
        "    id: llama-7b",
        "    context_size: 2048",
        "    sequences: 1",
        "",
      ]
        .filter((line) => line !== "")
        .join("\n"),
    );
  }

  async function plan(spec: object, extra: Record<string, string> = {}, args: string[] = ["--json"]) {
    const path = join(dir, `spec-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(path, JSON.stringify(spec));
    return runCorral(
      ["worker", "--plan", ...args],
      corralEnv({
        CORRAL_FAKE_NVIDIA_SMI_SPEC: path,
        CORRAL_NVIDIA_SMI: FAKE_NVIDIA_SMI,
        CORRAL_MODELS_DIR: models,
        CORRAL_WORKER_ID: "lab1",
        ...extra,
      }),
    );
  }

  async function planJson(spec: object, extra: Record<string, string> = {}): Promise<WorkerPlan> {
    const result = await plan(spec, extra);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as WorkerPlan;
  }

  const byId = (p: WorkerPlan, id: string) => p.models.find((model) => model.id === id)!;

  test("2× RTX A5000 (the real -q -x capture): the 40 GB model runs on a group of two, the 7B on one GPU", async () => {
    const p = await planJson({ xml: "dual-rtx-a5000_query-xml.xml" });
    assert.deepEqual(
      p.slots.map((slot) => [slot.id, slot.devices, slot.device_name, slot.total_bytes / 1024 ** 2]),
      [
        ["lab1:gpu0", ["0"], "NVIDIA RTX A5000", 24564],
        ["lab1:gpu1", ["1"], "NVIDIA RTX A5000", 24564],
      ],
    );
    const big = byId(p, "llama-70b");
    assert.ok(
      big.requirement_bytes > 36 * GiB && big.requirement_bytes < 44 * GiB,
      `70B needs ${big.requirement_bytes}`,
    );
    assert.equal(big.runs_on, "group");
    assert.deepEqual(big.options[0]!.slots, ["gpu0", "gpu1"]);
    assert.equal(p.dynamic_groups, true, "the worker forms that group when a job for it waits");
    assert.ok(big.options[0]!.capacity_bytes >= big.requirement_bytes);
    // The capture was taken under load (1678 and 6862 MiB free): it fits once the GPUs are empty.
    assert.equal(big.options[0]!.fits_now, false);
    const small = byId(p, "llama-7b");
    assert.equal(small.runs_on, "slot");
    assert.deepEqual(small.options[0]!.slots, ["gpu1"]);
    assert.equal(small.options[0]!.fits_now, true);
  });

  test("with CORRAL_GPU_GROUPS=0+1 the two A5000 are one slot, and the 40 GB model runs on it", async () => {
    const p = await planJson({ xml: "dual-rtx-a5000_query-xml.xml" }, { CORRAL_GPU_GROUPS: "0+1" });
    assert.deepEqual(
      p.slots.map((slot) => [slot.id, slot.devices, slot.total_bytes / 1024 ** 2]),
      [["lab1:gpu0+1", ["0", "1"], 2 * 24564]],
    );
    const big = byId(p, "llama-70b");
    assert.equal(big.runs_on, "slot");
    assert.deepEqual([big.options[0]!.slots, big.options[0]!.gpus], [["gpu0+1"], [0, 1]]);
    assert.equal(p.dynamic_groups, false, "no GPU of its own left to group");
  });

  test("the text plan names the group and the slots", async () => {
    const result = await plan({ xml: "dual-rtx-a5000_query-xml.xml" }, {}, []);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^lab1:gpu0\s+0\s+NVIDIA RTX A5000\s+24\.0/m);
    assert.match(result.stdout, /^llama-70b \(llama-2-70b\.Q4_K_M\.gguf\): needs \d+\.\d GiB$/m);
    assert.match(result.stdout, /-> group of 2 gpu0\+gpu1: 44\.8 GiB usable/);
    assert.match(
      result.stdout,
      /formed when a job for it waits: .* at the latest 60 s after \(then their jobs get 30 s\)/,
    );
    const off = await plan({ xml: "dual-rtx-a5000_query-xml.xml" }, { CORRAL_DYNAMIC_GROUPS: "false" }, []);
    assert.match(off.stdout, /dynamic groups are off here: start the group with CORRAL_GPU_GROUPS/);
  });

  test("H100 with MIG (the real capture's profiles): one slot per MIG device; the 70B cannot run, and says why", async () => {
    const p = await planJson({
      gpus: [{ name: "NVIDIA H100 80GB HBM3", mig: ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"] }],
    });
    assert.deepEqual(
      p.slots.map((slot) => [slot.name, slot.devices[0]!.slice(0, 4), slot.device_name]),
      [
        ["gpu0-mig0", "MIG-", "NVIDIA H100 80GB HBM3 MIG 3g.40gb"],
        ["gpu0-mig1", "MIG-", "NVIDIA H100 80GB HBM3 MIG 2g.20gb"],
        ["gpu0-mig2", "MIG-", "NVIDIA H100 80GB HBM3 MIG 1g.10gb"],
        ["gpu0-mig3", "MIG-", "NVIDIA H100 80GB HBM3 MIG 1g.10gb"],
      ],
    );
    assert.equal(new Set(p.slots.map((slot) => slot.devices[0])).size, 4);
    const big = byId(p, "llama-70b");
    assert.equal(big.runs_on, "none");
    assert.match(big.reason!, /MIG devices and the CPU do not group/);
    // Best fit: the 7B (about 5 GiB) takes a 1g.10gb device and leaves the bigger ones free.
    assert.deepEqual(byId(p, "llama-7b").options[0]!.slots, ["gpu0-mig2"]);
  });

  test("H200 with MIG (the real -L capture's profiles): five slots, compute-instance profiles included", async () => {
    const p = await planJson({
      gpus: [{ name: "NVIDIA H200", mig: ["1c.3g.71gb", "2c.3g.71gb", "2g.35gb", "1g.18gb", "1g.18gb"] }],
    });
    assert.deepEqual(
      p.slots.map((slot) => [slot.name, slot.total_bytes]),
      [
        ["gpu0-mig0", 71e9],
        ["gpu0-mig1", 71e9],
        ["gpu0-mig2", 35e9],
        ["gpu0-mig3", 18e9],
        ["gpu0-mig4", 18e9],
      ],
    );
    assert.equal(byId(p, "llama-70b").runs_on, "slot");
  });

  test("synthetic 4-GPU host with a PCIe topology: the group stays on one switch; pins and reservations move it", async () => {
    const four = {
      gpus: [0, 1, 2, 3].map(() => ({ name: "NVIDIA GeForce RTX 3090", memory_total_mib: 24576 })),
      topo: "synthetic-4gpu-pcie_topo-matrix.txt",
    };
    const p = await planJson(four);
    assert.equal(p.topology, true);
    assert.deepEqual(byId(p, "llama-70b").options[0]!.gpus, [0, 1]);
    // The next best keeps a PIX pair too: 2+3 before any pair across the CPUs.
    assert.deepEqual(byId(p, "llama-70b").options[1]!.gpus, [2, 3]);

    const reserved = await planJson(four, { CORRAL_RESERVE_GPUS: "0=llama-7b" });
    assert.deepEqual(reserved.slots[0]!.reserved_for, ["llama-7b"]);
    assert.deepEqual(byId(reserved, "llama-70b").options[0]!.gpus, [2, 3]);

    await writeModelsYaml("    placement:\n      gpus: [1, 3]");
    try {
      const pinned = await planJson(four);
      assert.deepEqual(byId(pinned, "llama-70b").placement, { gpus: [1, 3] });
      assert.deepEqual(
        byId(pinned, "llama-70b").options.map((option) => option.gpus),
        [[1, 3]],
      );
    } finally {
      await writeModelsYaml("");
    }
  });

  test("synthetic 8-GPU host in two NVLink islands: a model of four GPUs gets one island", async () => {
    await writeModelsYaml("    placement:\n      gpu_names: [a4000]");
    try {
      const p = await planJson({
        gpus: Array.from({ length: 8 }, (_, i) => ({
          name: "NVIDIA RTX A4000",
          memory_total_mib: 12288,
          memory_used_mib: i < 4 ? 2000 : 0,
        })),
        topo: "synthetic-8gpu-nvlink_topo-matrix.txt",
      });
      const big = byId(p, "llama-70b");
      assert.equal(big.runs_on, "group");
      // 3 × (12 GiB − reserve) is too small; of the groups of 4, an island, the emptier one.
      assert.deepEqual(big.options[0]!.gpus, [4, 5, 6, 7]);
      assert.deepEqual(big.options[1]!.gpus, [0, 1, 2, 3]);
    } finally {
      await writeModelsYaml("");
    }
  });

  test("a model pinned to another host cannot run here, with the reason", async () => {
    await writeModelsYaml("    placement:\n      hosts: [lab2]\n      min_vram: 40GiB");
    try {
      const p = await planJson({ xml: "dual-rtx-a5000_query-xml.xml" });
      assert.deepEqual(byId(p, "llama-70b").placement, { hosts: ["lab2"], min_vram_bytes: 40 * GiB });
      assert.equal(byId(p, "llama-70b").runs_on, "none");
      assert.match(byId(p, "llama-70b").reason!, /placement\.hosts is lab2, not lab1/);
    } finally {
      await writeModelsYaml("");
    }
  });

  test("CPU mode plans CPU slots; --json without --plan is an error with a hint", async () => {
    const p = await planJson({ gpus: [{}] }, { CORRAL_CPU: "true", CORRAL_CPU_SLOTS: "2" });
    assert.deepEqual(
      p.slots.map((slot) => [slot.id, slot.kind, slot.devices]),
      [
        ["lab1:cpu0", "cpu", []],
        ["lab1:cpu1", "cpu", []],
      ],
    );
    const wrong = await runCorral(["worker", "--json"], corralEnv({ CORRAL_REDIS_URL: "redis://127.0.0.1:1" }));
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /--json needs --plan/);
    assert.doesNotMatch(wrong.stderr, STACK_LINE);
  });
});
