import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { byteSize } from "@corral/shared";
import { ModelsFileError } from "./errors.js";

/** Name of the optional per-model settings file inside the models folder. */
export const MODELS_FILE_NAME = "models.yaml";

const modelId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/, "expected 1-128 letters, digits, '.', '_', ':', '/' or '-'");

/** `placement:` of a models.yaml entry: where the model may run (see `ModelPlacement`). */
export const ModelsFilePlacement = z.strictObject({
  hosts: z.array(z.string().min(1)).min(1).optional(),
  gpu_names: z.array(z.string().min(1)).min(1).optional(),
  gpus: z.array(z.number().int().min(0)).min(1).optional(),
  /** `40GiB`, `24GB`, bytes. */
  min_vram: byteSize.optional(),
});
export type ModelsFilePlacement = z.infer<typeof ModelsFilePlacement>;

/** One entry of `models.yaml`: settings for one GGUF file (or whisper.cpp `.bin` model). */
export const ModelsFileEntry = z.strictObject({
  /** GGUF file (or whisper.cpp `.bin`), relative to the models folder. */
  file: z
    .string()
    .regex(/\.(gguf|bin)$/i, "expected a .gguf (or whisper.cpp .bin) file name")
    .refine((file) => !file.startsWith("/") && !file.split(/[\\/]/).includes(".."), {
      message: "expected a path inside the models folder",
    }),
  /** The id clients use. Default: the file name without `.gguf`. */
  id: modelId.optional(),
  aliases: z.array(modelId).default([]),
  /** Context size per sequence. Default: min(default context size, training context). */
  context_size: z.number().int().min(1).optional(),
  /** Parallel sequences per loaded model. Default: the default sequences. */
  sequences: z.number().int().min(1).max(1024).optional(),
  /** Operator override of the VRAM requirement (`20GiB`, `512MB`, bytes). */
  vram: byteSize.optional(),
  /** Limit the model to some hosts, GPU models, GPU indexes or GPU sizes. */
  placement: ModelsFilePlacement.optional(),
  /**
   * llama.cpp's split across a group's GPUs (`layer`, `row`, `none`) and the share of each
   * GPU. Read so that `scanModels` can refuse them by name with a warning: node-llama-cpp
   * 3.21.1 cannot pass either to llama.cpp (see {@link UNSUPPORTED_SPLIT_KEYS}).
   */
  split_mode: z.unknown().optional(),
  tensor_split: z.unknown().optional(),
});
export type ModelsFileEntry = z.infer<typeof ModelsFileEntry>;

/**
 * models.yaml keys that are read but not applied: node-llama-cpp 3.21.1's model options
 * (`AddonModelParams`: gpuLayers, mmap, mlock, KV overrides…) have no split mode, tensor
 * split or main GPU, so llama.cpp always runs its default on a group slot: whole layers
 * across the visible devices, in proportion to their free memory.
 */
export const UNSUPPORTED_SPLIT_KEYS = ["split_mode", "tensor_split"] as const;

export const ModelsFile = z.strictObject({
  models: z.array(ModelsFileEntry).nullable().default([]),
});
export type ModelsFile = z.infer<typeof ModelsFile>;

/**
 * Reads `models.yaml` from `modelsDir`. A missing file gives `null`; a file that is not
 * YAML or does not match {@link ModelsFile} throws a {@link ModelsFileError} naming the
 * file and the field.
 */
export async function readModelsFile(modelsDir: string): Promise<ModelsFileEntry[] | null> {
  const path = join(modelsDir, MODELS_FILE_NAME);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new ModelsFileError(path, null, `cannot read: ${(error as Error).message}`, error);
  }
  return parseModelsFile(text, path);
}

/** Parses and validates the text of a `models.yaml`; `path` only names it in errors. */
export function parseModelsFile(text: string, path: string): ModelsFileEntry[] {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    const firstLine = (error as Error).message.split("\n")[0] ?? "";
    throw new ModelsFileError(path, null, `not valid YAML: ${firstLine}`, error);
  }
  if (raw === null || raw === undefined) return [];
  const result = ModelsFile.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.length ? issue.path.map(String).join(".") : null;
    const got = valueAt(raw, issue.path);
    const shown = got === undefined || typeof got === "object" ? "" : ` (got ${JSON.stringify(got)})`;
    throw new ModelsFileError(path, field, `${issue.message}${shown}`);
  }
  return result.data.models ?? [];
}

const valueAt = (root: unknown, path: readonly PropertyKey[]): unknown =>
  path.reduce<unknown>(
    (node, key) =>
      node !== null && typeof node === "object" ? (node as Record<PropertyKey, unknown>)[key] : undefined,
    root,
  );
