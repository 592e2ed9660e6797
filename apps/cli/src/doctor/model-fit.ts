import { defaultReserveBytes, type CatalogModel, type GpuInfo } from "@corral/shared";
import { formatBytes } from "../output/table.js";
import type { CheckResult } from "./check-result.js";

/** One place a worker slot can load models: a whole GPU, or one MIG instance of it. */
interface Device {
  label: string;
  totalBytes: number;
}

function devicesOf(gpus: readonly GpuInfo[]): Device[] {
  return gpus.flatMap((gpu): Device[] => {
    if (gpu.mig_instances.length > 0) {
      return gpu.mig_instances
        .filter((m) => m.memory_total_bytes !== null)
        .map((m) => ({ label: `GPU ${gpu.index} MIG ${m.profile}`, totalBytes: m.memory_total_bytes! }));
    }
    return gpu.memory_total_bytes === null ? [] : [{ label: `GPU ${gpu.index}`, totalBytes: gpu.memory_total_bytes }];
  });
}

/**
 * Each catalog model's requirement (full offload at its context × sequences, or the
 * models.yaml override) against each GPU's memory less the reserve a worker keeps
 * (CORRAL_VRAM_RESERVE, else node-llama-cpp's min(8 %, 1.6 GiB)). Memory other processes
 * hold now is not counted: this says whether it can ever fit.
 */
export function checkModelFit(
  models: readonly CatalogModel[],
  gpus: readonly GpuInfo[],
  reserveBytes: number | null,
): CheckResult[] {
  const devices = devicesOf(gpus);
  if (devices.length === 0) return [];
  return models.map((model) => {
    const usable = devices.map((d) => ({
      ...d,
      usable: d.totalBytes - (reserveBytes ?? defaultReserveBytes(d.totalBytes)),
    }));
    const fits = usable.filter((d) => model.requirement_bytes <= d.usable);
    const override = model.vram_override_bytes === null ? "" : ", models.yaml vram";
    const needs =
      model.kind === "whisper"
        ? `${model.id} (Whisper) needs ${formatBytes(model.requirement_bytes)}${override ? ` (${override.slice(2)})` : ""}`
        : `${model.id} needs ${formatBytes(model.requirement_bytes)} (context ${model.context_size} × ${model.sequences} sequences${override})`;
    if (fits.length > 0) {
      return { name: "model fit", level: "ok", detail: `${needs}: fits ${fits.map((d) => d.label).join(", ")}` };
    }
    const best = usable.reduce((a, b) => (b.usable > a.usable ? b : a));
    return {
      name: "model fit",
      level: "warn",
      detail: `${needs}: fits no GPU (the largest, ${best.label}, has ${formatBytes(best.usable)} after the reserve); its jobs would wait`,
      fix: "pull a smaller quantization (`corral models pull hf:<owner>/<repo>:Q4_K_M`), or lower context_size / sequences for it in models.yaml (docs/configuration.md#models-folder)",
    };
  });
}
