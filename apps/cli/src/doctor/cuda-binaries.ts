import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { readElfDynamic } from "./read-elf.js";

/** One of node-llama-cpp's prebuilt CUDA builds, as installed. */
export interface CudaBinary {
  /** `@node-llama-cpp/linux-x64-cuda`, or `…-cuda-ext` for the fallback build. */
  package: string;
  version: string | null;
  /** The CUDA library inside it. */
  library: string;
  /** Major CUDA version of the runtime it links (`libcudart.so.13` → 13); null when unknown. */
  cudaMajor: number | null;
  /** The GPU architectures it was compiled for (`75` for sm_75), from its symbols; empty when unknown. */
  architectures: number[];
  /** Every library it links. */
  needed: string[];
}

/** Where node-llama-cpp keeps its CUDA builds on this platform (Linux x64 only). */
const CANDIDATES = [
  { package: "@node-llama-cpp/linux-x64-cuda", library: "bins/linux-x64-cuda/libggml-cuda.so" },
  { package: "@node-llama-cpp/linux-x64-cuda-ext", library: "bins/linux-x64-cuda/fallback/libggml-cuda.so" },
];

/**
 * The package folder of `name` as node-llama-cpp would import it (the node_modules folders
 * above node-llama-cpp, nearest first), or null when it is not installed.
 */
function packageDir(name: string): string | null {
  let dir: string;
  try {
    dir = dirname(fileURLToPath(import.meta.resolve("node-llama-cpp")));
  } catch {
    return null;
  }
  for (;;) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/** Reads which CUDA major and GPU architectures a CUDA library was built for. */
export async function describeCudaLibrary(pkg: string, version: string | null, library: string): Promise<CudaBinary> {
  const { needed, dynamicStrings } = await readElfDynamic(library);
  const cudart = needed.map((n) => /^libcudart\.so\.(\d+)/.exec(n)?.[1]).find((m) => m !== undefined);
  // CUDA's thrust puts the architectures it was built for into its inline namespace:
  // THRUST_300104_SM_750_800_860_890_900_1200_1210_NS → sm_75, 80, 86, 89, 90, 120, 121.
  const thrust = dynamicStrings.map((s) => /THRUST_\d+_SM_((?:\d+_)+)NS/.exec(s)?.[1]).find((m) => m !== undefined);
  const architectures = thrust
    ? thrust
        .split("_")
        .filter(Boolean)
        .map((n) => Number(n) / 10)
    : [];
  return { package: pkg, version, library, cudaMajor: cudart ? Number(cudart) : null, architectures, needed };
}

/** node-llama-cpp's CUDA builds installed here (none on a machine without them or not on Linux x64). */
export async function findCudaBinaries(): Promise<CudaBinary[]> {
  const found: CudaBinary[] = [];
  for (const candidate of CANDIDATES) {
    const dir = packageDir(candidate.package);
    if (!dir) continue;
    const library = join(dir, candidate.library);
    if (!existsSync(library)) continue;
    let version: string | null = null;
    try {
      version = (JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as { version?: string }).version ?? null;
    } catch {
      // keep null
    }
    try {
      found.push(await describeCudaLibrary(candidate.package, version, library));
    } catch {
      found.push({ package: candidate.package, version, library, cudaMajor: null, architectures: [], needed: [] });
    }
  }
  return found;
}
