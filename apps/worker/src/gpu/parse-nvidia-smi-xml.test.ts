import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { GpuInfo } from "@corral/shared";
import { NvidiaSmiParseError } from "./errors.js";
import { parseNvidiaSmiXml } from "./parse-nvidia-smi-xml.js";
import { MIB, realFixture } from "./test-support/fixtures.js";

describe("parseNvidiaSmiXml on the real dual RTX A5000 capture", () => {
  const report = parseNvidiaSmiXml(realFixture("dual-rtx-a5000_query-xml.xml"));

  test("reads the driver and CUDA versions from the log header", () => {
    assert.equal(report.driverVersion, "590.44.01");
    assert.equal(report.cudaVersion, "13.1");
  });

  test("reads both GPUs in document order with their memory, utilization, temperature and power", () => {
    assert.equal(report.gpus.length, 2);
    for (const gpu of report.gpus) GpuInfo.parse(gpu);
    assert.deepEqual(report.gpus[0], {
      index: 0,
      uuid: "GPU-12345678-aaaa-bbbb-cccc-0123456789ab",
      name: "NVIDIA RTX A5000",
      memory_total_bytes: 24564 * MIB,
      memory_used_bytes: 22437 * MIB,
      memory_free_bytes: 1678 * MIB,
      utilization_ratio: 0,
      temperature_celsius: 13,
      power_watts: 6.41,
      driver_version: "590.44.01",
      compute_capability: null,
      mig_mode: "unsupported",
      mig_instances: [],
    });
    const second = report.gpus[1]!;
    assert.equal(second.index, 1);
    assert.equal(second.uuid, "GPU-12345678-aaaa-bbbb-cccc-0123456789cd");
    assert.equal(second.name, "NVIDIA RTX A5000");
    assert.equal(second.memory_used_bytes, 17253 * MIB);
    assert.equal(second.memory_free_bytes, 6862 * MIB);
    assert.equal(second.temperature_celsius, 15);
    assert.equal(second.power_watts, 13.6);
  });
});

describe("parseNvidiaSmiXml on hand-written documents", () => {
  test("older DTDs: <power_readings><power_draw>, and MIG devices under <mig_devices>", () => {
    const report = parseNvidiaSmiXml(`<?xml version="1.0" ?>
<nvidia_smi_log>
  <driver_version>470.82.01</driver_version>
  <cuda_version>11.4</cuda_version>
  <gpu id="00000000:07:00.0">
    <product_name>NVIDIA A100-SXM4-40GB</product_name>
    <mig_mode><current_mig>Enabled</current_mig><pending_mig>Enabled</pending_mig></mig_mode>
    <mig_devices>
      <mig_device>
        <index>0</index>
        <gpu_instance_id>1</gpu_instance_id>
        <compute_instance_id>0</compute_instance_id>
        <fb_memory_usage><total>19968 MiB</total><used>13 MiB</used><free>19955 MiB</free></fb_memory_usage>
      </mig_device>
    </mig_devices>
    <uuid>GPU-a100</uuid>
    <fb_memory_usage><total>40536 MiB</total><used>13 MiB</used><free>40523 MiB</free></fb_memory_usage>
    <utilization><gpu_util>N/A</gpu_util></utilization>
    <temperature><gpu_temp>30 C</gpu_temp></temperature>
    <power_readings><power_draw>52.11 W</power_draw></power_readings>
  </gpu>
</nvidia_smi_log>`);
    assert.equal(report.cudaVersion, "11.4");
    const [gpu] = report.gpus;
    assert.equal(gpu!.mig_mode, "enabled");
    assert.equal(gpu!.utilization_ratio, null);
    assert.equal(gpu!.power_watts, 52.11);
    assert.deepEqual(gpu!.mig_instances, [{ uuid: "", profile: "", device_index: 0, memory_total_bytes: 19968 * MIB }]);
  });

  test("a log without GPUs has none", () => {
    assert.deepEqual(parseNvidiaSmiXml("<nvidia_smi_log><attached_gpus>0</attached_gpus></nvidia_smi_log>").gpus, []);
  });

  test("text that is not XML, or XML of another kind, is rejected", () => {
    assert.throws(() => parseNvidiaSmiXml("NVIDIA-SMI has failed"), NvidiaSmiParseError);
    assert.throws(() => parseNvidiaSmiXml("<nvidia_smi_log><gpu>"), NvidiaSmiParseError);
    assert.throws(() => parseNvidiaSmiXml("<html><body/></html>"), /no <nvidia_smi_log>/);
  });
});
