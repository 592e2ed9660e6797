import { MIB } from "./utils/values.js";

/** One row of the default table's "MIG devices" section. */
export interface MigDeviceUsage {
  gpu_index: number;
  gpu_instance_id: number;
  compute_instance_id: number;
  /** The MIG device's index, as in `nvidia-smi -L` (`Device 0`). */
  device_index: number;
  memory_used_bytes: number;
  memory_total_bytes: number;
}

const CUDA_VERSION = /CUDA Version:\s*(\d+(?:\.\d+)*)/;

/**
 * The CUDA version from the header of plain `nvidia-smi` (`CUDA Version: 12.4`): the
 * highest CUDA the driver supports. Null when the line is absent or reads `N/A`.
 */
export function parseCudaVersion(defaultTableText: string): string | null {
  return CUDA_VERSION.exec(defaultTableText)?.[1] ?? null;
}

// |  0    2   0   0  |           11091MiB / 40448MiB    | 60      0 |  3   0    3    0    3 |
const MIG_DEVICE_ROW = /^\|\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\|\s*(\d+)MiB\s*\/\s*(\d+)MiB\s*\|/;

/**
 * The "MIG devices" section of plain `nvidia-smi`: exact memory per MIG device (the
 * profile name only rounds it). Empty when there is no such section.
 */
export function parseMigDevicesTable(defaultTableText: string): MigDeviceUsage[] {
  const lines = defaultTableText.split(/\r?\n/);
  const start = lines.findIndex((line) => /\|\s*MIG devices:/.test(line));
  if (start === -1) return [];
  const devices: MigDeviceUsage[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === "") break; // the section ends at the blank line before "Processes:"
    const match = MIG_DEVICE_ROW.exec(line);
    if (!match) continue;
    devices.push({
      gpu_index: Number(match[1]),
      gpu_instance_id: Number(match[2]),
      compute_instance_id: Number(match[3]),
      device_index: Number(match[4]),
      memory_used_bytes: Number(match[5]) * MIB,
      memory_total_bytes: Number(match[6]) * MIB,
    });
  }
  return devices;
}
