import assert from "node:assert/strict";
import { test } from "node:test";
import { METRIC } from "@corral/shared";
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
