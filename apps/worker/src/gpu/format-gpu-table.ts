import type { GpuInfo } from "@corral/shared";
import type { GpuDiscovery } from "./discover-gpus.js";
import { GIB } from "./utils/values.js";

const DASH = "-";

function gib(bytes: number | null): string {
  return bytes === null ? DASH : (bytes / GIB).toFixed(1);
}

function memory(gpu: GpuInfo): string {
  if (gpu.memory_used_bytes === null && gpu.memory_total_bytes === null) return DASH;
  return `${gib(gpu.memory_used_bytes)} / ${gib(gpu.memory_total_bytes)} GiB`;
}

function mig(gpu: GpuInfo): string {
  if (gpu.mig_mode === "unsupported") return DASH;
  if (gpu.mig_mode === "disabled") return "off";
  return gpu.mig_instances.length === 0 ? "on" : `on (${gpu.mig_instances.length})`;
}

function renderRows(header: string[], rows: string[][], rightAligned: ReadonlySet<number>): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...all.map((row) => (row[column] ?? "").length)));
  return all.map((row) =>
    row
      .map((cell, column) => {
        const width = widths[column] ?? 0;
        return rightAligned.has(column) ? cell.padStart(width) : cell.padEnd(width);
      })
      .join("  ")
      .trimEnd(),
  );
}

/**
 * The `corral gpus` table: one row per GPU, then one indented row per MIG device.
 * Plain text with aligned columns, no colour, ending without a newline.
 */
export function formatGpuTable(discovery: GpuDiscovery): string {
  if (discovery.mode === "cpu" || discovery.gpus.length === 0) {
    return "No NVIDIA GPU found (nvidia-smi is not installed or lists no GPU); workers run on the CPU.";
  }
  const header = ["IDX", "NAME", "MEMORY USED/TOTAL", "FREE GiB", "UTIL", "TEMP", "POWER", "MIG"];
  const rows: string[][] = [];
  for (const gpu of discovery.gpus) {
    rows.push([
      String(gpu.index),
      gpu.name || DASH,
      memory(gpu),
      gib(gpu.memory_free_bytes),
      gpu.utilization_ratio === null ? DASH : `${Math.round(gpu.utilization_ratio * 100)}%`,
      gpu.temperature_celsius === null ? DASH : `${gpu.temperature_celsius}C`,
      gpu.power_watts === null ? DASH : `${gpu.power_watts.toFixed(0)}W`,
      mig(gpu),
    ]);
    for (const instance of gpu.mig_instances) {
      rows.push([
        "",
        `  MIG ${instance.device_index}: ${instance.profile || "?"}`,
        instance.memory_total_bytes === null ? DASH : `${gib(instance.memory_total_bytes)} GiB`,
        "",
        "",
        "",
        "",
        "",
      ]);
    }
  }
  const facts = [
    `Driver ${discovery.driverVersion ?? "unknown"}`,
    `CUDA ${discovery.cudaVersion ?? "unknown"}`,
    `${discovery.gpus.length} GPU${discovery.gpus.length === 1 ? "" : "s"}`,
  ];
  return [facts.join("   "), "", ...renderRows(header, rows, new Set([0, 3, 4, 5, 6]))].join("\n");
}
