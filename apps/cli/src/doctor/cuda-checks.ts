import { existsSync, readdirSync } from "node:fs";
import { delimiter, join } from "node:path";
import type { GpuInfo } from "@corral/shared";
import type { CudaBinary } from "./cuda-binaries.js";
import type { CheckResult } from "./check-result.js";

const DOC = "docs/gpu-setup.md";

/** `"12.4"` → 12. */
const majorOf = (version: string | null): number | null => {
  const major = Number(version?.split(".")[0]);
  return version && Number.isInteger(major) ? major : null;
};

/** The binary node-llama-cpp would load with this driver: the first whose CUDA major the driver supports. */
export function usableCudaBinary(binaries: readonly CudaBinary[], driverCuda: string | null): CudaBinary | null {
  const supported = majorOf(driverCuda);
  if (supported === null) return null;
  return binaries.find((b) => b.cudaMajor !== null && b.cudaMajor <= supported) ?? null;
}

/**
 * The driver's CUDA version (the highest it supports, from nvidia-smi) against what each
 * installed node-llama-cpp CUDA build links (`libcudart.so.<major>`).
 */
export function checkCudaDriver(
  driverVersion: string | null,
  driverCuda: string | null,
  binaries: readonly CudaBinary[],
): CheckResult {
  const name = "cuda driver";
  if (binaries.length === 0) {
    return {
      name,
      level: "fail",
      detail: "no node-llama-cpp CUDA build is installed (@node-llama-cpp/linux-x64-cuda)",
      fix: "install dependencies with their optional ones (`npm ci`, not --omit=optional), or `npm install @node-llama-cpp/linux-x64-cuda@3.21.1 @node-llama-cpp/linux-x64-cuda-ext@3.21.1`",
    };
  }
  const builds = binaries
    .map((b) => `${b.package.replace("@node-llama-cpp/", "")} needs CUDA ${b.cudaMajor ?? "?"}`)
    .join(", ");
  const driver = `driver ${driverVersion ?? "?"} supports CUDA ${driverCuda ?? "?"}`;
  if (majorOf(driverCuda) === null) {
    return {
      name,
      level: "warn",
      detail: `${driver}; ${builds}`,
      fix: `plain \`nvidia-smi\` shows "CUDA Version" in its header; an old driver may not: update it (${DOC}#1-the-nvidia-driver)`,
    };
  }
  const usable = usableCudaBinary(binaries, driverCuda);
  const newest = Math.max(...binaries.map((b) => b.cudaMajor ?? 0));
  if (usable === null) {
    return {
      name,
      level: "fail",
      detail: `${driver}; ${builds}: no CUDA build can run on this driver`,
      fix: `update the NVIDIA driver to one whose nvidia-smi shows CUDA Version ${newest}.0 or newer (${DOC}#1-the-nvidia-driver)`,
    };
  }
  if (usable.cudaMajor !== newest) {
    return {
      name,
      level: "warn",
      detail: `${driver}; ${builds}: node-llama-cpp falls back to ${usable.package} (CUDA ${usable.cudaMajor})`,
      fix: `works as it is; a driver that supports CUDA ${newest} lets the main build load (${DOC}#1-the-nvidia-driver)`,
    };
  }
  return { name, level: "ok", detail: `${driver}; ${builds}: ${usable.package} fits` };
}

/** Each GPU's compute capability against the architectures the usable CUDA build was compiled for. */
export function checkComputeCapability(gpus: readonly GpuInfo[], binary: CudaBinary | null): CheckResult[] {
  return gpus.map((gpu) => {
    const name = `gpu ${gpu.index} arch`;
    const cc = gpu.compute_capability;
    const sm = cc === null ? NaN : Math.round(Number(cc) * 10);
    if (!Number.isFinite(sm)) {
      return {
        name,
        level: "warn",
        detail: `${gpu.name}: compute capability unknown (an older driver does not report compute_cap)`,
        fix: `look it up on https://developer.nvidia.com/cuda-gpus; llama.cpp's CUDA build needs 7.5 or newer (${DOC}#compute-capability)`,
      };
    }
    const built = binary?.architectures ?? [];
    if (built.length === 0) {
      return { name, level: "ok", detail: `${gpu.name}: compute capability ${cc}` };
    }
    const oldest = Math.min(...built);
    if (sm < oldest) {
      return {
        name,
        level: "fail",
        detail: `${gpu.name}: compute capability ${cc}, older than the CUDA build's oldest target sm_${oldest} (built for ${built.map((a) => `sm_${a}`).join(", ")})`,
        fix: `build llama.cpp for this GPU once: \`npx --no node-llama-cpp source build --gpu cuda\` (${DOC}#compute-capability), or use a newer GPU`,
      };
    }
    const exact = built.includes(sm);
    return {
      name,
      level: "ok",
      detail: `${gpu.name}: compute capability ${cc}${exact ? `, built for sm_${sm}` : `, runs the sm_${Math.max(...built.filter((a) => a <= sm))} code`}`,
    };
  });
}

/** Where the dynamic linker looks: LD_LIBRARY_PATH, then the usual system and CUDA folders. */
export function libraryDirs(env: Record<string, string | undefined>): string[] {
  const fromEnv = (env.LD_LIBRARY_PATH ?? "").split(delimiter).filter(Boolean);
  const system = [
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/lib64",
    "/usr/local/cuda/lib64",
    "/usr/lib/wsl/lib",
  ];
  let cuda: string[] = [];
  try {
    cuda = readdirSync("/usr/local")
      .filter((d) => /^cuda-\d/.test(d))
      .map((d) => join("/usr/local", d, "lib64"));
  } catch {
    // no /usr/local
  }
  return [...fromEnv, ...system, ...cuda];
}

/** Which of the libraries a CUDA build links are found in `dirs` (a name match, as the loader does). */
export function missingLibraries(needed: readonly string[], dirs: readonly string[]): string[] {
  const wanted = needed.filter((n) => /^lib(cuda|cudart|cublas|cublasLt)\.so/.test(n));
  return wanted.filter((lib) => !dirs.some((dir) => existsSync(join(dir, lib))));
}

/**
 * Loads node-llama-cpp's CUDA backend the way a worker does (`build: "never"`): fails fast
 * instead of compiling. A failure is a finding, with the missing libraries when that is why.
 */
export async function probeCudaBackend(
  binary: CudaBinary | null,
  env: Record<string, string | undefined>,
): Promise<CheckResult> {
  const name = "cuda backend";
  try {
    const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
    const llama = await getLlama({ gpu: "cuda", build: "never", logLevel: LlamaLogLevel.error, progressLogs: false });
    try {
      const vram = await llama.getVramState();
      return {
        name,
        level: "ok",
        detail: `getLlama({gpu: "cuda", build: "never"}) loaded; llama.cpp sees ${(vram.total / 1024 ** 3).toFixed(1)} GiB of VRAM`,
      };
    } finally {
      await llama.dispose();
    }
  } catch (error) {
    const message =
      error instanceof Error ? `${error.name === "Error" ? "" : `${error.name}: `}${error.message}` : String(error);
    const missing = binary ? missingLibraries(binary.needed, libraryDirs(env)) : [];
    const driverLib = missing.includes("libcuda.so.1");
    const runtime = missing.filter((lib) => lib !== "libcuda.so.1");
    return {
      name,
      level: "fail",
      detail: `getLlama({gpu: "cuda", build: "never"}) failed: ${message}${missing.length > 0 ? `; not found: ${missing.join(", ")}` : ""}`,
      fix: driverLib
        ? `libcuda.so.1 comes with the NVIDIA driver: install it, or in a container run with the NVIDIA Container Toolkit (--gpus all) (${DOC}#1-the-nvidia-driver)`
        : runtime.length > 0
          ? `install the CUDA ${binary?.cudaMajor ?? ""} runtime libraries (${runtime.join(", ")}) and make them visible to the loader (ldconfig or LD_LIBRARY_PATH) (${DOC}#2-the-cuda-runtime-libraries)`
          : `run \`npx --no node-llama-cpp inspect gpu\` for node-llama-cpp's own diagnosis (${DOC}#common-errors)`,
    };
  }
}
