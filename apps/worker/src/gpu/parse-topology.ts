import { NvidiaSmiParseError } from "./errors.js";

/**
 * How two GPUs are connected, as `nvidia-smi topo -m` names it, best first:
 * `NV<n>` NVLink with n links; `PIX` at most one PCIe switch; `PXB` several PCIe switches
 * but no host bridge; `PHB` through a PCIe host bridge (one CPU); `NODE` across host bridges
 * within one NUMA node; `SYS` across the inter-CPU link (QPI/UPI).
 */
export type GpuLink = "NVLINK" | "PIX" | "PXB" | "PHB" | "NODE" | "SYS";

/** Links between a host's GPUs, by nvidia-smi index. */
export interface GpuTopology {
  /** The GPU indexes in the matrix, in its order. */
  gpus: number[];
  /** `links.get(a)?.get(b)`: the link between GPUs a and b (a ≠ b). */
  links: Map<number, Map<number, { link: GpuLink; nvlinks: number }>>;
}

/** Rank of a link: lower is better (NVLink with more links first). */
export function linkRank(entry: { link: GpuLink; nvlinks: number } | undefined): number {
  if (entry === undefined) return 100;
  if (entry.link === "NVLINK") return -entry.nvlinks;
  return ["PIX", "PXB", "PHB", "NODE", "SYS"].indexOf(entry.link) + 1;
}

const CELL = /^(?:NV(\d+)|PIX|PXB|PHB|NODE|SYS|SOC|X)$/;

/**
 * Parses the matrix of `nvidia-smi topo -m`: a header row of column names (`GPU0 GPU1 …`,
 * then NICs and `CPU Affinity`…), one row per GPU, then NIC rows and a legend. Only
 * GPU-to-GPU cells are kept; `SOC` (old drivers) reads as `SYS`. Throws
 * `NvidiaSmiParseError` when there is no GPU header or row, or a GPU cell it does not know.
 */
export function parseTopology(text: string): GpuTopology {
  const lines = text.split(/\r?\n/);
  const headerAt = lines.findIndex((line) => /^\s+GPU\d+\s/.test(`${line} `));
  if (headerAt === -1) throw new NvidiaSmiParseError("topology", "no header row of GPU columns", null);
  const gpus = [...lines[headerAt]!.matchAll(/\bGPU(\d+)\b/g)].map((match) => Number(match[1]));
  const links: GpuTopology["links"] = new Map();
  lines.slice(headerAt + 1).forEach((line, offset) => {
    const row = /^GPU(\d+)\s+(.*)$/.exec(line.trim());
    if (row === null) return; // NIC rows, blank lines, the legend
    const from = Number(row[1]);
    const cells = row[2]!.trim().split(/\s+/);
    const byGpu = new Map<number, { link: GpuLink; nvlinks: number }>();
    gpus.forEach((to, column) => {
      const cell = cells[column] ?? "";
      const match = CELL.exec(cell);
      if (match === null)
        throw new NvidiaSmiParseError(
          "topology",
          `GPU${from} to GPU${to}: unknown link ${JSON.stringify(cell)}`,
          headerAt + offset + 2,
        );
      if (cell === "X") return;
      if (match[1] !== undefined) byGpu.set(to, { link: "NVLINK", nvlinks: Number(match[1]) });
      else byGpu.set(to, { link: (cell === "SOC" ? "SYS" : cell) as GpuLink, nvlinks: 0 });
    });
    links.set(from, byGpu);
  });
  if (links.size === 0) throw new NvidiaSmiParseError("topology", "no GPU rows", headerAt + 1);
  return { gpus, links };
}
