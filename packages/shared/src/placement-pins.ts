import type { ModelPlacement } from "./schemas/catalog-model.js";

/** One GPU as pins see it: nvidia-smi's index and name, and its total memory. */
export interface PinnedGpu {
  index: number;
  name: string;
  totalBytes: number;
}

const gib = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(1)} GiB`;

/**
 * Why a model's `placement` pins keep it off a slot of worker `host` over `gpus` (empty: a
 * CPU slot; several: a group slot, each GPU checked), or null when they allow it. The
 * worker's claim and `corral worker --plan` (placement rule 1) and the scheduler's
 * admission check share it.
 */
export function pinnedOut(
  placement: ModelPlacement | null | undefined,
  host: string,
  gpus: readonly PinnedGpu[],
): string | null {
  if (placement === null || placement === undefined) return null;
  if (placement.hosts !== undefined && !placement.hosts.includes(host))
    return `placement.hosts is ${placement.hosts.join(", ")}, not ${host}`;
  if (gpus.length === 0) {
    if (placement.gpu_names !== undefined || placement.gpus !== undefined || placement.min_vram_bytes !== undefined)
      return "placement asks for a GPU";
    return null;
  }
  for (const gpu of gpus) {
    if (placement.gpu_names !== undefined) {
      const name = gpu.name.toLowerCase();
      if (!placement.gpu_names.some((wanted) => name.includes(wanted.toLowerCase())))
        return `placement.gpu_names (${placement.gpu_names.join(", ")}) does not match ${gpu.name}`;
    }
    if (placement.gpus !== undefined && !placement.gpus.includes(gpu.index))
      return `placement.gpus is ${placement.gpus.join(", ")}, not ${gpu.index}`;
    if (placement.min_vram_bytes !== undefined && gpu.totalBytes < placement.min_vram_bytes)
      return `placement.min_vram is ${gib(placement.min_vram_bytes)}, GPU ${gpu.index} has ${gib(gpu.totalBytes)}`;
  }
  return null;
}
