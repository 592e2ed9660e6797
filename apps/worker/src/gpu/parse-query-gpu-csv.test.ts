import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { GpuInfo } from "@corral/shared";
import { NvidiaSmiParseError } from "./errors.js";
import { parseQueryGpuCsv, readQueryGpuCsv } from "./parse-query-gpu-csv.js";
import { MIB, realFixture, syntheticFixture } from "./test-support/fixtures.js";

const H100_IDLE = "h100-80gb-hbm3_query-gpu-all-fields_idle.csv";
const H100_MIG = "h100-mig_query-gpu-all-fields_load.csv";
const RTX_4080 = "rtx-4080-super_query-gpu-all-fields_load.csv";

describe("parseQueryGpuCsv on real captures", () => {
  test("H100 idle: all 212 fields, values by header name, reserved memory left out of free", () => {
    const text = realFixture(H100_IDLE);
    assert.equal(readQueryGpuCsv(text)[0]!.size, 212);
    const gpus = parseQueryGpuCsv(text);
    assert.equal(gpus.length, 1);
    const gpu = GpuInfo.parse(gpus[0]);
    assert.deepEqual(gpu, {
      index: 0,
      uuid: "GPU-00000000-0000-0000-0000-000000000000",
      name: "NVIDIA H100 80GB HBM3",
      memory_total_bytes: 81559 * MIB,
      memory_used_bytes: 0,
      memory_free_bytes: 81081 * MIB,
      utilization_ratio: 0,
      temperature_celsius: 41,
      power_watts: 69.85,
      driver_version: "590.48.01",
      compute_capability: "9.0",
      mig_mode: "disabled",
      mig_instances: [],
    });
    // total ≠ used + free: the driver reserves memory (memory.reserved is 479 MiB) that is not free.
    assert.equal(gpu.memory_total_bytes! - gpu.memory_used_bytes! - gpu.memory_free_bytes!, 478 * MIB);
  });

  test("H100 with MIG enabled under load: utilization is [N/A] → null, MIG mode enabled", () => {
    const [gpu] = parseQueryGpuCsv(realFixture(H100_MIG));
    assert.ok(gpu);
    assert.equal(gpu.utilization_ratio, null);
    assert.equal(gpu.mig_mode, "enabled");
    assert.equal(gpu.memory_used_bytes, 11125 * MIB);
    assert.equal(gpu.memory_free_bytes, 69956 * MIB);
    assert.equal(gpu.temperature_celsius, 53);
    assert.equal(gpu.power_watts, 433.78);
    assert.equal(gpu.compute_capability, "9.0");
  });

  test("RTX 4080 SUPER: 202 columns with kmd_version, MIG [N/A] → unsupported", () => {
    const text = realFixture(RTX_4080);
    const [record] = readQueryGpuCsv(text);
    assert.equal(record!.size, 202);
    assert.equal(record!.get("kmd_version")?.raw, "595.71.05");
    assert.deepEqual(record!.get("memory.total"), { raw: "16376 MiB", unit: "MiB" });
    const [gpu] = parseQueryGpuCsv(text);
    assert.ok(gpu);
    assert.equal(gpu.name, "NVIDIA GeForce RTX 4080 SUPER");
    assert.equal(gpu.memory_total_bytes, 16376 * MIB);
    assert.equal(gpu.memory_used_bytes, 1474 * MIB);
    assert.equal(gpu.memory_free_bytes, 14470 * MIB);
    assert.equal(gpu.utilization_ratio, 0.07);
    assert.equal(gpu.temperature_celsius, 46);
    assert.equal(gpu.power_watts, 84.24);
    assert.equal(gpu.driver_version, "595.71.05");
    assert.equal(gpu.compute_capability, "8.9");
    assert.equal(gpu.mig_mode, "unsupported");
  });
});

describe("parseQueryGpuCsv on the synthetic 4-GPU table", () => {
  const gpus = parseQueryGpuCsv(syntheticFixture("synthetic-4gpu_query-gpu.csv"));

  test("reads four GPUs with their own index, uuid, name and memory", () => {
    assert.deepEqual(
      gpus.map((gpu) => [gpu.index, gpu.uuid, gpu.name, gpu.memory_free_bytes! / MIB]),
      [
        [0, "GPU-00000000-0000-0000-0000-000000000000", "NVIDIA H100 80GB HBM3", 81081],
        [1, "GPU-00000001-0000-0000-0000-000000000001", "NVIDIA GeForce RTX 4080 SUPER", 14470],
        [2, "GPU-00000002-0000-0000-0000-000000000002", "NVIDIA H100 80GB HBM3", 69956],
        [3, "GPU-00000003-0000-0000-0000-000000000003", "NVIDIA GeForce RTX 4080 SUPER", 14470],
      ],
    );
    for (const gpu of gpus) GpuInfo.parse(gpu);
  });

  test("keeps each row's placeholders and MIG mode apart", () => {
    assert.deepEqual(
      gpus.map((gpu) => [gpu.utilization_ratio, gpu.mig_mode, gpu.driver_version]),
      [
        [0, "disabled", "590.48.01"],
        [0.07, "unsupported", "595.71.05"],
        [null, "enabled", "590.48.01"],
        [0.07, "unsupported", "595.71.05"],
      ],
    );
  });
});

describe("parseQueryGpuCsv on hand-written tables", () => {
  test("columns are found by name whatever their order", () => {
    const text = [
      "memory.free [MiB], name, index, utilization.gpu [%], uuid, memory.total [MiB]",
      "100 MiB, GPU B, 1, 50 %, GPU-b, 200 MiB",
      "300 MiB, GPU A, 0, [Not Supported], GPU-a, 400 MiB",
    ].join("\n");
    const gpus = parseQueryGpuCsv(text);
    assert.deepEqual(
      gpus.map((gpu) => [
        gpu.index,
        gpu.name,
        gpu.uuid,
        gpu.memory_free_bytes,
        gpu.memory_total_bytes,
        gpu.utilization_ratio,
      ]),
      [
        [1, "GPU B", "GPU-b", 100 * MIB, 200 * MIB, 0.5],
        [0, "GPU A", "GPU-a", 300 * MIB, 400 * MIB, null],
      ],
    );
    // Fields that were not asked for are unknown, not zero.
    assert.equal(gpus[0]!.power_watts, null);
    assert.equal(gpus[0]!.memory_used_bytes, null);
    assert.equal(gpus[0]!.mig_mode, "unsupported");
  });

  test("nounits output takes the unit from the header", () => {
    const [gpu] = parseQueryGpuCsv(
      "index, memory.total [MiB], memory.free [MiB], power.draw [W], utilization.gpu [%]\n0, 24564, 1678, 6.41, 3\n",
    );
    assert.equal(gpu!.memory_total_bytes, 24564 * MIB);
    assert.equal(gpu!.memory_free_bytes, 1678 * MIB);
    assert.equal(gpu!.power_watts, 6.41);
    assert.equal(gpu!.utilization_ratio, 0.03);
  });

  test("noheader output parses with the requested field list", () => {
    const gpus = parseQueryGpuCsv("0, GPU-a, 81559 MiB\r\n1, GPU-b, 16376 MiB\r\n", {
      fields: ["index", "uuid", "memory.total"],
    });
    assert.deepEqual(
      gpus.map((gpu) => [gpu.index, gpu.uuid, gpu.memory_total_bytes]),
      [
        [0, "GPU-a", 81559 * MIB],
        [1, "GPU-b", 16376 * MIB],
      ],
    );
  });

  test("every placeholder spelling reads as null", () => {
    const [gpu] = parseQueryGpuCsv(
      [
        "index, uuid, name, memory.total [MiB], memory.used [MiB], memory.free [MiB], utilization.gpu [%], temperature.gpu, power.draw [W], driver_version, compute_cap, mig.mode.current",
        "0, GPU-x, Tesla K80, [N/A], [Not Supported], , [Requested functionality has been deprecated], N/A, [Unknown Error], [N/A], , [N/A]",
      ].join("\n"),
    );
    assert.deepEqual(GpuInfo.parse(gpu), {
      index: 0,
      uuid: "GPU-x",
      name: "Tesla K80",
      memory_total_bytes: null,
      memory_used_bytes: null,
      memory_free_bytes: null,
      utilization_ratio: null,
      temperature_celsius: null,
      power_watts: null,
      driver_version: null,
      compute_capability: null,
      mig_mode: "unsupported",
      mig_instances: [],
    });
  });

  test("power.draw falls back to power.draw.average when it is [N/A]", () => {
    const [gpu] = parseQueryGpuCsv("index, power.draw [W], power.draw.average [W]\n0, [N/A], 12.50 W");
    assert.equal(gpu!.power_watts, 12.5);
  });

  test("a header alone means no GPUs", () => {
    assert.deepEqual(parseQueryGpuCsv("index, uuid, name\n"), []);
  });
});

describe("parseQueryGpuCsv rejects what is not a --query-gpu table", () => {
  const rejects = (text: string, pattern: RegExp) =>
    assert.throws(
      () => parseQueryGpuCsv(text),
      (error: unknown) => error instanceof NvidiaSmiParseError && pattern.test(error.message),
    );

  test("driver failure text", () =>
    rejects(
      "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.",
      /not a field name/,
    ));
  test("empty output", () => rejects("", /empty output/));
  test("a header with no identifying column", () => rejects("memory.total [MiB]\n100 MiB", /no identifying column/));
  test("a row with more values than the header", () =>
    rejects("index, uuid\n0, GPU-a, extra", /3 values but the header has 2/));
  test("memory that is not a size", () => rejects("index, memory.free [MiB]\n0, plenty", /memory.free .* not a size/));
  test("an index that is a placeholder", () => rejects("index, uuid\n[N/A], GPU-a", /index of GPU row 0/));
});
