import type { CatalogModel } from "@corral/shared";

/** A model in OpenAI's `/v1/models` shape, with Corral's details under `corral`. */
export interface ModelObject {
  id: string;
  object: "model";
  /** Unix seconds. */
  created: number;
  owned_by: "corral";
  corral: {
    /** `llm` (chat, completions, embeddings) or `whisper` (`/v1/audio/transcriptions` and `/translations`). */
    kind: CatalogModel["kind"];
    file: string;
    aliases: string[];
    parameters: number;
    architecture: string;
    context_size: number;
    sequences: number;
    requirement_bytes: number;
    estimated_vram_bytes: number;
    vram_override_bytes: number | null;
    train_context_size: number;
    layers: number;
  };
}

export const toModelObject = (model: CatalogModel): ModelObject => ({
  id: model.id,
  object: "model",
  created: Math.floor(model.created_at / 1000),
  owned_by: "corral",
  corral: {
    kind: model.kind,
    file: model.file,
    aliases: model.aliases,
    parameters: model.parameters,
    architecture: model.architecture,
    context_size: model.context_size,
    sequences: model.sequences,
    requirement_bytes: model.requirement_bytes,
    estimated_vram_bytes: model.estimated_vram_bytes,
    vram_override_bytes: model.vram_override_bytes,
    train_context_size: model.train_context_size,
    layers: model.layers,
  },
});
