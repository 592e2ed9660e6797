import type { MigInstance } from "@corral/shared";
import { NvidiaSmiParseError } from "./errors.js";

/** One physical GPU line of `nvidia-smi -L`, with the MIG devices listed under it. */
export interface ListedGpu {
  index: number;
  name: string;
  uuid: string;
  mig_instances: MigInstance[];
}

/** A MIG profile name split into its parts: `1c.3g.71gb` → 1 compute slice of a 3-slice GPU instance with 71 GB. */
export interface MigProfile {
  profile: string;
  /** Compute slices (`1c.`), or null when the instance takes all of its GPU instance's compute. */
  compute_slices: number | null;
  /** GPU slices (`3g`). */
  gpu_slices: number;
  /** Memory in the name (`71gb` → 71), or null when the name has none. */
  memory_gb: number | null;
  /** Extra attributes after `+` (`+me`, `+gfx`). */
  attributes: string[];
}

const GPU_LINE = /^GPU\s+(\d+):\s*(.*?)\s*\(UUID:\s*([^)]+?)\s*\)\s*$/;
// Drivers ≥ 470: `MIG 3g.40gb Device 0: (UUID: MIG-…)`; drivers 450–460: `MIG 3g.20gb Device 0: (UUID: MIG-GPU-…/1/0)`.
const MIG_LINE = /^MIG\s+(\S+)\s+Device\s+(\d+):\s*\(UUID:\s*([^)]+?)\s*\)\s*$/;
const PROFILE = /^(?:(\d+)c\.)?(\d+)g(?:\.(\d+(?:\.\d+)?)gb)?((?:\+[A-Za-z0-9]+)*)$/i;

/** Parses a MIG profile name (`3g.40gb`, `1c.3g.71gb`, `1g.10gb+me`); null when it is not one. */
export function parseMigProfile(profile: string): MigProfile | null {
  const match = PROFILE.exec(profile.trim());
  if (!match) return null;
  return {
    profile: profile.trim(),
    compute_slices: match[1] === undefined ? null : Number(match[1]),
    gpu_slices: Number(match[2]),
    memory_gb: match[3] === undefined ? null : Number(match[3]),
    attributes: (match[4] ?? "").split("+").filter((attribute) => attribute !== ""),
  };
}

/**
 * Memory of a MIG instance as its profile name gives it, in bytes, or null. The name's
 * `gb` is a rounded decimal figure: `3g.40gb` is 40448 MiB on an H100 and `1g.10gb` is
 * 9984 MiB. Reading it as 10^9 bytes stays under the real size for these profiles, which
 * is the safe side for fitting models. The default table's MIG section gives the exact size.
 */
export function migProfileMemoryBytes(profile: string): number | null {
  const memoryGb = parseMigProfile(profile)?.memory_gb ?? null;
  return memoryGb === null ? null : Math.round(memoryGb * 1e9);
}

/**
 * Parses `nvidia-smi -L`: one line per GPU, and under a MIG-enabled GPU one indented
 * line per MIG device. Throws `NvidiaSmiParseError` on any other non-blank line.
 */
export function parseListGpus(text: string): ListedGpu[] {
  const gpus: ListedGpu[] = [];
  text.split(/\r?\n/).forEach((rawLine, i) => {
    const line = rawLine.trim();
    if (line === "") return;
    const gpu = GPU_LINE.exec(line);
    if (gpu) {
      gpus.push({ index: Number(gpu[1]), name: gpu[2] ?? "", uuid: gpu[3] ?? "", mig_instances: [] });
      return;
    }
    const mig = MIG_LINE.exec(line);
    if (mig) {
      const parent = gpus.at(-1);
      if (parent === undefined) throw new NvidiaSmiParseError("list-gpus", "MIG device listed before any GPU", i + 1);
      const profile = mig[1] ?? "";
      parent.mig_instances.push({
        uuid: mig[3] ?? "",
        profile,
        device_index: Number(mig[2]),
        memory_total_bytes: migProfileMemoryBytes(profile),
      });
      return;
    }
    throw new NvidiaSmiParseError("list-gpus", `unrecognised line ${JSON.stringify(line.slice(0, 120))}`, i + 1);
  });
  return gpus;
}
