import type { CatalogModel } from "./schemas/catalog-model.js";

/**
 * The VRAM-fit rule. A slot fits a requirement when
 * requirement ≤ live free memory − reserve + memory held by the slot's own idle models.
 * Live free memory comes from nvidia-smi (or free RAM for CPU slots), never from
 * bookkeeping alone, because other processes use the GPU too.
 */
export interface FitInput {
  requirementBytes: number;
  liveFreeBytes: number;
  reserveBytes: number;
  /** Bytes held by models this slot has loaded but is not using, which it may unload. */
  reclaimableBytes: number;
}

export const availableBytes = ({
  liveFreeBytes,
  reserveBytes,
  reclaimableBytes,
}: Omit<FitInput, "requirementBytes">): number => Math.max(0, liveFreeBytes - reserveBytes + reclaimableBytes);

export const fits = (input: FitInput): boolean => input.requirementBytes <= availableBytes(input);

/** node-llama-cpp's default VRAM padding: min(8% of total, 1.6 GiB). */
export const defaultReserveBytes = (totalBytes: number): number =>
  Math.floor(Math.min(totalBytes * 0.08, 1.6 * 1024 ** 3));

export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;

/**
 * What a model needs on a slot. GPU slots use the catalog's `requirement_bytes` (the
 * operator's override when set, else the estimate for full offload). CPU slots use the
 * RAM estimate, unless the operator set an override: then the override, since it is the
 * only measured number there is and weights take about as much RAM as VRAM.
 */
export function requirementOn(kind: "gpu" | "cpu", model: CatalogModel): number {
  if (kind === "gpu") return model.requirement_bytes;
  return model.vram_override_bytes ?? model.estimated_ram_bytes;
}
