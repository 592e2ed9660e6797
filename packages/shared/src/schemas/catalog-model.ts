import { z } from "zod";

/**
 * Where a model may run (`placement:` in models.yaml). Every field that is set must hold;
 * an unset field allows everything.
 */
export const ModelPlacement = z.object({
  /** Worker ids (`CORRAL_WORKER_ID`, the host name by default) allowed to run it. */
  hosts: z.array(z.string()).optional(),
  /** GPU names allowed, matched case-insensitively as a part of nvidia-smi's name (`A5000`, `H100`). */
  gpu_names: z.array(z.string()).optional(),
  /** nvidia-smi indexes of the GPUs allowed (a MIG device counts as its GPU's index). */
  gpus: z.array(z.number().int().min(0)).optional(),
  /** Only on GPUs (each GPU of a group) with at least this much memory in total, bytes. */
  min_vram_bytes: z.number().int().min(0).optional(),
});
export type ModelPlacement = z.infer<typeof ModelPlacement>;

/** One model in the catalog, as published to Redis by the scheduler. */
export const CatalogModel = z.object({
  /** The id clients use (`model` in requests): the alias, or the file name without `.gguf`. */
  id: z.string(),
  /** Other names that resolve to this model. */
  aliases: z.array(z.string()).default([]),
  /**
   * What the model does: `llm` (a GGUF run by llama.cpp: completions, chat, embeddings) or
   * `whisper` (a whisper.cpp ggml `.bin`: transcriptions and translations). Absent (an older
   * scheduler): `llm`.
   */
  kind: z.enum(["llm", "whisper"]).default("llm"),
  /** File name relative to `CORRAL_MODELS_DIR`. */
  file: z.string(),
  file_size_bytes: z.number().int().min(0),
  architecture: z.string(),
  parameters: z.number().int().min(0),
  layers: z.number().int().min(0),
  train_context_size: z.number().int().min(0),
  /** Context size each sequence gets when a worker loads the model. */
  context_size: z.number().int().min(1),
  /** Parallel sequences per loaded model. */
  sequences: z.number().int().min(1),
  /** Embedding width, when the GGUF says. */
  embedding_length: z.number().int().min(0).nullable(),
  has_chat_template: z.boolean(),
  /** Estimated VRAM for full offload at `context_size × sequences` (weights + KV + compute). */
  estimated_vram_bytes: z.number().int().min(0),
  /** Estimated RAM for a CPU-only load at the same context. */
  estimated_ram_bytes: z.number().int().min(0),
  /** Operator override from models.yaml, when set. */
  vram_override_bytes: z.number().int().min(0).nullable(),
  /** What placement uses: the override when set, else the estimate. */
  requirement_bytes: z.number().int().min(0),
  /** Pinning from models.yaml; null (or absent, from an older scheduler): anywhere. */
  placement: ModelPlacement.nullable().optional(),
  created_at: z.number(),
});
export type CatalogModel = z.infer<typeof CatalogModel>;

export const Catalog = z.object({
  models: z.array(CatalogModel),
  updated_at: z.number(),
});
export type Catalog = z.infer<typeof Catalog>;
