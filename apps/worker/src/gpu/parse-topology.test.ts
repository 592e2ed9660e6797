import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { NvidiaSmiParseError } from "./errors.js";
import { linkRank, parseTopology } from "./parse-topology.js";
import { syntheticFixture } from "./test-support/fixtures.js";

const link = (topology: ReturnType<typeof parseTopology>, a: number, b: number) => {
  const entry = topology.links.get(a)?.get(b);
  return entry === undefined ? undefined : entry.link === "NVLINK" ? `NV${entry.nvlinks}` : entry.link;
};

describe("parseTopology (synthetic matrices)", () => {
  test("4 GPUs on two CPUs: PIX within a pair, SYS across; the CPU affinity columns are not links", () => {
    const topology = parseTopology(syntheticFixture("synthetic-4gpu-pcie_topo-matrix.txt"));
    assert.deepEqual(topology.gpus, [0, 1, 2, 3]);
    assert.deepEqual(
      [link(topology, 0, 1), link(topology, 1, 0), link(topology, 0, 2), link(topology, 2, 3), link(topology, 1, 3)],
      ["PIX", "PIX", "SYS", "PIX", "SYS"],
    );
    assert.equal(link(topology, 0, 0), undefined);
  });

  test("8 GPUs in two NVLink islands, with a NIC column and row that are skipped", () => {
    const topology = parseTopology(syntheticFixture("synthetic-8gpu-nvlink_topo-matrix.txt"));
    assert.deepEqual(topology.gpus, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal(topology.links.size, 8);
    assert.equal(link(topology, 0, 3), "NV4");
    assert.equal(link(topology, 4, 7), "NV4");
    assert.equal(link(topology, 3, 4), "SYS");
  });

  test("links rank NVLink (more links first), then PIX, PXB, PHB, NODE, SYS", () => {
    const ranks = [
      { link: "NVLINK", nvlinks: 12 },
      { link: "NVLINK", nvlinks: 4 },
      { link: "PIX", nvlinks: 0 },
      { link: "PXB", nvlinks: 0 },
      { link: "PHB", nvlinks: 0 },
      { link: "NODE", nvlinks: 0 },
      { link: "SYS", nvlinks: 0 },
    ] as const;
    const sorted = ranks.map(linkRank);
    assert.deepEqual(
      sorted,
      [...sorted].sort((a, b) => a - b),
    );
    assert.equal(new Set(sorted).size, ranks.length);
    assert.ok(linkRank(undefined) > linkRank({ link: "SYS", nvlinks: 0 }));
  });

  test("SOC from old drivers reads as SYS; an unknown cell or no header is a parse error", () => {
    const old = "\tGPU0\tGPU1\tCPU Affinity\nGPU0\t X \tSOC\t0-7\nGPU1\tSOC\t X \t0-7\n";
    assert.equal(link(parseTopology(old), 0, 1), "SYS");
    assert.throws(
      () => parseTopology("\tGPU0\tGPU1\nGPU0\t X \tWAT\nGPU1\tWAT\t X \n"),
      (error: unknown) => error instanceof NvidiaSmiParseError && /unknown link "WAT"/.test(error.message),
    );
    assert.throws(() => parseTopology("No devices were found\n"), NvidiaSmiParseError);
  });
});
