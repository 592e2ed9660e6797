import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { CommandRunner } from "./command-runner.js";
import { discoverGpus } from "./discover-gpus.js";
import { formatGpuTable } from "./format-gpu-table.js";
import { parseQueryGpuCsv } from "./parse-query-gpu-csv.js";
import { realFixture, syntheticFixture } from "./test-support/fixtures.js";

describe("formatGpuTable", () => {
  test("one aligned row per GPU: memory in GiB, free, util, temp, power, MIG", () => {
    const gpus = parseQueryGpuCsv(syntheticFixture("synthetic-4gpu_query-gpu.csv"));
    const text = formatGpuTable({ mode: "gpu", gpus, driverVersion: "590.48.01", cudaVersion: "13.1" });
    const lines = text.split("\n");
    assert.equal(lines[0], "Driver 590.48.01   CUDA 13.1   4 GPUs");
    assert.equal(lines[1], "");
    assert.deepEqual(lines.slice(2), [
      "IDX  NAME                           MEMORY USED/TOTAL  FREE GiB  UTIL  TEMP  POWER  MIG",
      "  0  NVIDIA H100 80GB HBM3          0.0 / 79.6 GiB         79.2    0%   41C    70W  off",
      "  1  NVIDIA GeForce RTX 4080 SUPER  1.4 / 16.0 GiB         14.1    7%   46C    84W  -",
      "  2  NVIDIA H100 80GB HBM3          10.9 / 79.6 GiB        68.3     -   53C   434W  on",
      "  3  NVIDIA GeForce RTX 4080 SUPER  1.4 / 16.0 GiB         14.1    7%   46C    84W  -",
    ]);
  });

  test("MIG devices are listed under their GPU", async () => {
    const answers: Record<string, string> = {
      query: realFixture("h100-mig_query-gpu-all-fields_load.csv"),
      list: realFixture("h100-mig_list-gpus.txt"),
      table: realFixture("h100-mig_default-table_load.txt"),
    };
    const runner: CommandRunner = async (_file, args) => ({
      stdout: answers[args[0]?.startsWith("--query-gpu") ? "query" : args[0] === "-L" ? "list" : "table"]!,
      stderr: "",
      exitCode: 0,
    });
    const text = formatGpuTable(await discoverGpus({ nvidiaSmiPath: "nvidia-smi", timeoutMs: 1000, runner }));
    assert.match(text, /^ {2}0 {2}NVIDIA H100 80GB HBM3 +10\.9 \/ 79\.6 GiB +68\.3 +- +53C +434W +on \(4\)$/m);
    assert.match(text, /^ +MIG 0: 3g\.40gb +39\.5 GiB$/m);
    assert.match(text, /^ +MIG 3: 1g\.10gb +9\.8 GiB$/m);
  });

  test("CPU mode says there is no GPU", () => {
    assert.match(
      formatGpuTable({ mode: "cpu", gpus: [], driverVersion: null, cudaVersion: null }),
      /No NVIDIA GPU found/,
    );
  });
});
