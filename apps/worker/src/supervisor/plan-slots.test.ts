import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, type GpuInfo } from "@corral/shared";
import { discoverGpus, type CommandRunner, type GpuDiscovery } from "../gpu/index.js";
import { MIB, realFixture } from "../gpu/test-support/fixtures.js";
import { planSlots } from "./plan-slots.js";

/** Discovery through an injected runner that answers with the given nvidia-smi outputs. */
async function discoverFrom(outputs: { query: string; list: string; table: string }): Promise<GpuDiscovery> {
  const runner: CommandRunner = async (_file, args) => ({
    stdout: args[0]?.startsWith("--query-gpu=") ? outputs.query : args[0] === "-L" ? outputs.list : outputs.table,
    stderr: "",
    exitCode: 0,
  });
  return discoverGpus({ nvidiaSmiPath: "nvidia-smi", timeoutMs: 5000, runner });
}

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
    assert.deepEqual(
      slots.map((s) => s.devices),
      [["0"], ["1"], ["2"], ["3"]],
    );
  });

  test("real H100 MIG capture: one slot per MIG device, addressed by its UUID, with its own memory from the table", async () => {
    const discovery = await discoverFrom({
      query: realFixture("h100-mig_query-gpu-all-fields_load.csv"),
      list: realFixture("h100-mig_list-gpus.txt"),
      table: realFixture("h100-mig_default-table_load.txt"),
    });
    const slots = planSlots(base, discovery, 16);
    assert.deepEqual(
      slots.map((s) => [
        s.id,
        s.gpuIndex,
        s.devices,
        s.gpus[0]!.name,
        s.gpus[0]!.memory_total_bytes! / MIB,
        s.gpus[0]!.memory_used_bytes! / MIB,
        s.gpus[0]!.memory_free_bytes! / MIB,
        s.threads,
      ]),
      [
        [
          "box:gpu0-mig0",
          0,
          ["MIG-00000000-0000-0000-0000-000000000000"],
          "NVIDIA H100 80GB HBM3 MIG 3g.40gb",
          40448,
          11091,
          29357,
          4,
        ],
        [
          "box:gpu0-mig1",
          0,
          ["MIG-00000001-0000-0000-0000-000000000001"],
          "NVIDIA H100 80GB HBM3 MIG 2g.20gb",
          20096,
          17,
          20079,
          4,
        ],
        [
          "box:gpu0-mig2",
          0,
          ["MIG-00000002-0000-0000-0000-000000000002"],
          "NVIDIA H100 80GB HBM3 MIG 1g.10gb",
          9984,
          9,
          9975,
          4,
        ],
        [
          "box:gpu0-mig3",
          0,
          ["MIG-00000003-0000-0000-0000-000000000003"],
          "NVIDIA H100 80GB HBM3 MIG 1g.10gb",
          9984,
          9,
          9975,
          4,
        ],
      ],
    );
    // No slot for the whole GPU: CUDA cannot use a MIG-enabled GPU as one device.
    assert.ok(slots.every((s) => s.gpus[0]!.uuid.startsWith("MIG-")));
    // CORRAL_GPUS names the physical GPU: picking 0 keeps its four MIG slots.
    assert.equal(planSlots({ ...base, gpus: [0] }, discovery, 16).length, 4);
  });

  test("real H200 MIG capture (-L): five slots, compute-instance profiles included, sized from the profile names", async () => {
    // No H200 --query-gpu capture exists: its -L listing is attached to the H100 MIG row by
    // the (masked, identical) GPU UUID, and the table has no MIG section, as on a driver without it.
    const discovery = await discoverFrom({
      query: realFixture("h100-mig_query-gpu-all-fields_load.csv"),
      list: realFixture("h200-mig_list-gpus.txt"),
      table: "| NVIDIA-SMI 590.48.01   Driver Version: 590.48.01   CUDA Version: 13.1 |\n",
    });
    const slots = planSlots(base, discovery, 10);
    assert.deepEqual(
      slots.map((s) => [s.name, s.devices[0], s.gpus[0]!.mig_instances[0]!.profile, s.gpus[0]!.memory_total_bytes]),
      [
        ["gpu0-mig0", "MIG-00000000-0000-0000-0000-000000000000", "1c.3g.71gb", 71e9],
        ["gpu0-mig1", "MIG-00000001-0000-0000-0000-000000000001", "2c.3g.71gb", 71e9],
        ["gpu0-mig2", "MIG-00000002-0000-0000-0000-000000000002", "2g.35gb", 35e9],
        ["gpu0-mig3", "MIG-00000003-0000-0000-0000-000000000003", "1g.18gb", 18e9],
        ["gpu0-mig4", "MIG-00000004-0000-0000-0000-000000000004", "1g.18gb", 18e9],
      ],
    );
    assert.ok(slots.every((s) => s.threads === 2));
  });

  test("a MIG-enabled GPU without MIG devices gets no slot; its neighbours keep theirs", () => {
    const migEmpty = { ...gpu(1), mig_mode: "enabled" as const };
    const slots = planSlots(base, { ...fourGpus, gpus: [gpu(0), migEmpty] }, 16);
    assert.deepEqual(
      slots.map((s) => s.id),
      ["box:gpu0"],
    );
  });

  test("CORRAL_GPU_GROUPS: one slot over each group's GPUs, in place of theirs; a bad group is a ConfigError", () => {
    const slots = planSlots({ ...base, gpuGroups: [[1, 2]] }, fourGpus, 16);
    assert.deepEqual(
      slots.map((s) => [s.id, s.gpuIndex, s.devices, s.gpus.map((g) => g.index), s.threads]),
      [
        ["box:gpu0", 0, ["0"], [0], 5],
        ["box:gpu1+2", 1, ["1", "2"], [1, 2], 5],
        ["box:gpu3", 3, ["3"], [3], 5],
      ],
    );
    // A group whose GPUs CORRAL_GPUS leaves out is not started.
    assert.deepEqual(
      planSlots({ ...base, gpus: [0, 3], gpuGroups: [[1, 2]] }, fourGpus, 16).map((s) => s.id),
      ["box:gpu0", "box:gpu3"],
    );
    assert.throws(
      () => planSlots({ ...base, gpuGroups: [[3, 4]] }, fourGpus, 16),
      (error: unknown) =>
        error instanceof ConfigError && error.variable === "CORRAL_GPU_GROUPS" && /4/.test(error.message),
    );
    const withMig = { ...fourGpus, gpus: [gpu(0), { ...gpu(1), mig_mode: "enabled" as const }] };
    assert.throws(
      () => planSlots({ ...base, gpuGroups: [[0, 1]] }, withMig, 16),
      (error: unknown) => error instanceof ConfigError && /MIG/.test(error.message),
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
