import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, type GpuInfo } from "@corral/shared";
import type { GpuDiscovery } from "../gpu/index.js";
import { planSlots } from "./plan-slots.js";

const gpu = (index: number): GpuInfo => ({
  index,
  uuid: `GPU-${index}`,
  name: "NVIDIA H100 80GB HBM3",
  memory_total_bytes: 80 * 1024 ** 3,
  memory_used_bytes: 0,
  memory_free_bytes: 80 * 1024 ** 3,
  utilization_ratio: 0,
  temperature_celsius: 30,
  power_watts: 70,
  driver_version: "550.54.15",
  compute_capability: "9.0",
  mig_mode: "disabled",
  mig_instances: [],
});
const fourGpus: GpuDiscovery = {
  mode: "gpu",
  gpus: [0, 1, 2, 3].map(gpu),
  driverVersion: "550.54.15",
  cudaVersion: "12.4",
};
const noGpu: GpuDiscovery = { mode: "cpu", gpus: [], driverVersion: null, cudaVersion: null };
const base = { workerId: "box", gpus: null, cpu: false, cpuSlots: 1, threads: null };

describe("planSlots", () => {
  test("one slot per GPU, named by index, sharing the cores", () => {
    const slots = planSlots(base, fourGpus, 16);
    assert.deepEqual(
      slots.map((s) => [s.id, s.name, s.kind, s.gpuIndex, s.gpus.map((g) => g.index), s.threads, s.cudaVersion]),
      [
        ["box:gpu0", "gpu0", "gpu", 0, [0], 4, "12.4"],
        ["box:gpu1", "gpu1", "gpu", 1, [1], 4, "12.4"],
        ["box:gpu2", "gpu2", "gpu", 2, [2], 4, "12.4"],
        ["box:gpu3", "gpu3", "gpu", 3, [3], 4, "12.4"],
      ],
    );
  });

  test("CORRAL_GPUS picks GPUs; an unknown index is a ConfigError naming the variable", () => {
    assert.deepEqual(
      planSlots({ ...base, gpus: [2, 0] }, fourGpus, 16).map((s) => s.id),
      ["box:gpu0", "box:gpu2"],
    );
    assert.throws(
      () => planSlots({ ...base, gpus: [0, 7] }, fourGpus, 16),
      (error: unknown) => error instanceof ConfigError && error.variable === "CORRAL_GPUS" && /7/.test(error.message),
    );
  });

  test("CPU slots without a GPU, or with CORRAL_CPU", () => {
    const none = planSlots({ ...base, cpuSlots: 3 }, noGpu, 8);
    assert.deepEqual(
      none.map((s) => [s.id, s.kind, s.gpuIndex, s.threads]),
      [
        ["box:cpu0", "cpu", null, 2],
        ["box:cpu1", "cpu", null, 2],
        ["box:cpu2", "cpu", null, 2],
      ],
    );
    assert.deepEqual(
      planSlots({ ...base, cpu: true }, fourGpus, 8).map((s) => [s.id, s.threads]),
      [["box:cpu0", 8]],
    );
  });

  test("CORRAL_THREADS wins and turns calibration off; at least one thread per slot", () => {
    assert.ok(planSlots({ ...base, threads: 3 }, fourGpus, 16).every((s) => s.threads === 3 && !s.calibrateThreads));
    assert.ok(planSlots({ ...base, cpu: true, threads: 2 }, noGpu, 2).every((s) => !s.calibrateThreads));
    assert.ok(planSlots({ ...base, cpu: true }, noGpu, 2).every((s) => s.threads === 2 && s.calibrateThreads));
    assert.ok(planSlots({ ...base, cpuSlots: 4 }, noGpu, 2).every((s) => s.threads === 1));
  });
});
