import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseCudaVersion, parseMigDevicesTable } from "./parse-default-table.js";
import { MIB, realFixture } from "./test-support/fixtures.js";

describe("the default nvidia-smi table", () => {
  const table = realFixture("h100-mig_default-table_load.txt");

  test("gives the CUDA version from its header", () => {
    assert.equal(parseCudaVersion(table), "13.1");
    assert.equal(
      parseCudaVersion("| NVIDIA-SMI 550.127.05             Driver Version: 550.127.05     CUDA Version: 12.4     |"),
      "12.4",
    );
  });

  test("has no CUDA version when the line is missing or says N/A", () => {
    assert.equal(parseCudaVersion(table.replace(/CUDA Version: 13\.1/, "                  ")), null);
    assert.equal(parseCudaVersion("| NVIDIA-SMI 590.48.01   Driver Version: 590.48.01   CUDA Version: N/A |"), null);
    assert.equal(parseCudaVersion(""), null);
  });

  test("gives each MIG device's exact memory", () => {
    assert.deepEqual(parseMigDevicesTable(table), [
      {
        gpu_index: 0,
        gpu_instance_id: 2,
        compute_instance_id: 0,
        device_index: 0,
        memory_used_bytes: 11091 * MIB,
        memory_total_bytes: 40448 * MIB,
      },
      {
        gpu_index: 0,
        gpu_instance_id: 3,
        compute_instance_id: 0,
        device_index: 1,
        memory_used_bytes: 17 * MIB,
        memory_total_bytes: 20096 * MIB,
      },
      {
        gpu_index: 0,
        gpu_instance_id: 9,
        compute_instance_id: 0,
        device_index: 2,
        memory_used_bytes: 9 * MIB,
        memory_total_bytes: 9984 * MIB,
      },
      {
        gpu_index: 0,
        gpu_instance_id: 10,
        compute_instance_id: 0,
        device_index: 3,
        memory_used_bytes: 9 * MIB,
        memory_total_bytes: 9984 * MIB,
      },
    ]);
  });

  test("has no MIG devices without a MIG section", () => {
    const withoutMig = table.slice(0, table.indexOf("| MIG devices:"));
    assert.deepEqual(parseMigDevicesTable(withoutMig), []);
  });
});
