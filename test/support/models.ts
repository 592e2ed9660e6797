import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { CatalogModel } from "@corral/shared";

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

/**
 * The shared speech fixtures (`jfk.wav`, `jfk.mp3`): `CORRAL_TEST_AUDIO_DIR`, else
 * `fixtures/audio` beside the shared models folder (as `bench/transcription-rtf.ts` finds it).
 */
export const audioFixturesDir = (): string =>
  process.env.CORRAL_TEST_AUDIO_DIR ??
  resolve(process.env.CORRAL_TEST_MODELS_DIR ?? resolve(repoRoot, "../shared/models"), "../fixtures/audio");

export const STORIES = "stories260K";
export const TINY_RANDOM = "llama-2-tiny-random";
export const repoRootDir = repoRoot;
export const nvidiaSmiFixturesDir = (): string => resolve(repoRoot, "../shared/fixtures/nvidia-smi");

/**
 * A catalog entry for tests that never load it: `id` with a small file and requirement,
 * and whatever `overrides` change (a placement, a requirement).
 */
export function catalogModel(id: string, overrides: Partial<CatalogModel> = {}): CatalogModel {
  return {
    id,
    aliases: [],
    kind: "llm",
    file: `${id}.gguf`,
    file_size_bytes: 1000,
    architecture: "llama",
    parameters: 1,
    layers: 1,
    train_context_size: 512,
    context_size: 512,
    sequences: 1,
    embedding_length: null,
    has_chat_template: false,
    estimated_vram_bytes: 2000,
    estimated_ram_bytes: 2000,
    vram_override_bytes: null,
    requirement_bytes: 2000,
    placement: null,
    created_at: 1,
    ...overrides,
  };
}
