import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { test } from "node:test";
import { GpuInfo } from "@corral/shared";
import { nvidiaSmiFixturesDir } from "../../../../test/support/models.js";
import { parseCudaVersion, parseMigDevicesTable } from "./parse-default-table.js";
import { parseListGpus } from "./parse-list-gpus.js";
import { parseTopology } from "./parse-topology.js";
import { parseQueryGpuCsv } from "./parse-query-gpu-csv.js";
import { realFixture, syntheticFixture, syntheticFixturesDir } from "./test-support/fixtures.js";

/**
 * Parses one capture by the kind its name declares, and says how many GPUs it found; null
 * for an XML capture (`-q -x`), which nothing in Corral reads: it stays as a reference.
 */
function parseByKind(name: string, text: string): number | null {
  if (/_query-gpu(-all-fields)?(_[a-z]+)?\.csv$/.test(name)) {
    const gpus = parseQueryGpuCsv(text);
    for (const gpu of gpus) GpuInfo.parse(gpu);
    return gpus.length;
  }
  if (name.endsWith("_list-gpus.txt")) return parseListGpus(text).length;
  if (name.endsWith("_query-xml.xml")) return null;
  if (name.endsWith("_topo-matrix.txt")) return parseTopology(text).gpus.length;
  if (/_default-table(_[a-z]+)?\.txt$/.test(name)) {
    assert.notEqual(parseCudaVersion(text), null, `${name} has a CUDA version`);
    parseMigDevicesTable(text);
    return 1;
  }
  throw new Error(
    `no parser for ${name}: name it *_query-gpu*.csv, *_list-gpus.txt, *_query-xml.xml, *_topo-matrix.txt or *_default-table*.txt`,
  );
}

test("every real nvidia-smi capture parses and lists at least one GPU", () => {
  const names = readdirSync(nvidiaSmiFixturesDir()).filter((name) => name !== "README.md");
  assert.ok(names.length >= 7, `found ${names.length} captures`);
  const found = Object.fromEntries(names.map((name) => [name, parseByKind(name, realFixture(name))]));
  const expected: Record<string, number | null> = {
    "dual-rtx-a5000_query-xml.xml": null,
    "h100-80gb-hbm3_query-gpu-all-fields_idle.csv": 1,
    "h100-mig_default-table_load.txt": 1,
    "h100-mig_list-gpus.txt": 1,
    "h100-mig_query-gpu-all-fields_load.csv": 1,
    "h200-mig_list-gpus.txt": 1,
    "rtx-4080-super_query-gpu-all-fields_load.csv": 1,
  };
  for (const [name, count] of Object.entries(expected)) assert.equal(found[name], count, name);
  for (const [name, count] of Object.entries(found)) assert.ok(count === null || count >= 1, `${name} lists a GPU`);
});

test("every synthetic capture parses", () => {
  const names = readdirSync(syntheticFixturesDir).filter((name) => /\.(csv|txt|xml)$/.test(name));
  assert.deepEqual(Object.fromEntries(names.map((name) => [name, parseByKind(name, syntheticFixture(name))])), {
    "synthetic-4gpu-pcie_topo-matrix.txt": 4,
    "synthetic-4gpu_query-gpu.csv": 4,
    "synthetic-8gpu-nvlink_topo-matrix.txt": 8,
  });
});
