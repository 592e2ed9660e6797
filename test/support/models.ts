import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/**
 * The tiny real GGUF models (stories260K, llama-2-tiny-random). They are not copied
 * into the repo: `CORRAL_TEST_MODELS_DIR`, else `../shared/models` beside the checkout.
 */
export function sharedModelsDir(): string {
  const dir = process.env.CORRAL_TEST_MODELS_DIR ?? resolve(repoRoot, "../shared/models");
  if (!existsSync(resolve(dir, "stories260K.gguf"))) {
    throw new Error(
      `stories260K.gguf not found in ${dir}; set CORRAL_TEST_MODELS_DIR to the folder holding the tiny models`,
    );
  }
  return dir;
}

export const STORIES = "stories260K";
export const TINY_RANDOM = "llama-2-tiny-random";
export const repoRootDir = repoRoot;
export const nvidiaSmiFixturesDir = (): string => resolve(repoRoot, "../shared/fixtures/nvidia-smi");
