import assert from "node:assert/strict";
import { test } from "node:test";
import { METRIC } from "@corral/shared";
import { migDeviceAsGpu } from "../gpu/index.js";
import { SlotMetrics } from "./slot-metrics.js";

test("corral_slot_devices_info labels a slot with its CUDA_VISIBLE_DEVICES and GPU indexes", async () => {
  const group = new SlotMetrics({
    slot: "lab1:gpu0+1",
    host: "lab1",
    gpus: () => [],
    devices: { devices: ["0", "1"], gpus: [0, 1] },
  });
  const mig = new SlotMetrics({
    slot: "lab1:gpu0-mig2",
    host: "lab1",
    gpus: () => [],
    devices: { devices: ["MIG-00000002-0000-0000-0000-000000000002"], gpus: [0] },
  });
  const read = async (metrics: SlotMetrics) =>
    (await metrics.registry.getSingleMetric(METRIC.slotDevices)!.get()).values.map((v) => [v.labels, v.value]);
  assert.deepEqual(await read(group), [[{ slot: "lab1:gpu0+1", host: "lab1", devices: "0,1", gpus: "0,1" }, 1]]);
  assert.deepEqual(await read(mig), [
    [{ slot: "lab1:gpu0-mig2", host: "lab1", devices: "MIG-00000002-0000-0000-0000-000000000002", gpus: "0" }, 1],
  ]);
  assert.deepEqual(await read(new SlotMetrics({ slot: "x", host: "h", gpus: () => [] })), []);
});

test("MIG slots: the GPU gauges name the MIG device, and leave the whole GPU's temperature and power out", async () => {
  const parent = {
    index: 0,
    uuid: "GPU-0",
    name: "NVIDIA H100 80GB HBM3",
    memory_total_bytes: 81559 * 1024 ** 2,
    memory_used_bytes: 0,
    memory_free_bytes: 81559 * 1024 ** 2,
    utilization_ratio: null,
    temperature_celsius: 52,
    power_watts: 432,
    driver_version: "590.48.01",
    compute_capability: "9.0",
    mig_mode: "enabled" as const,
    mig_instances: [],
  };
  const device = migDeviceAsGpu(parent, {
    uuid: "MIG-00000002-0000-0000-0000-000000000002",
    profile: "1g.10gb",
    device_index: 2,
    memory_total_bytes: 9984 * 1024 ** 2,
    memory_used_bytes: 9 * 1024 ** 2,
  });
  const metrics = new SlotMetrics({ slot: "lab1:gpu0-mig2", host: "lab1", gpus: () => [device] });
  const series = async (name: string) =>
    (await metrics.registry.getSingleMetric(name)!.get()).values.map((v) => [v.labels.gpu, v.labels.name, v.value]);
  assert.deepEqual(await series(METRIC.gpuMemoryTotal), [
    ["0-mig2", "NVIDIA H100 80GB HBM3 MIG 1g.10gb", 9984 * 1024 ** 2],
  ]);
  assert.deepEqual(await series(METRIC.gpuTemperature), []);
  assert.deepEqual(await series(METRIC.gpuPower), []);
  // A whole GPU keeps its index as the label, and its temperature.
  const whole = new SlotMetrics({
    slot: "lab1:gpu1",
    host: "lab1",
    gpus: () => [{ ...parent, index: 1, mig_mode: "disabled" }],
  });
  assert.deepEqual(
    (await whole.registry.getSingleMetric(METRIC.gpuTemperature)!.get()).values.map((v) => [v.labels.gpu, v.value]),
    [["1", 52]],
  );
});
