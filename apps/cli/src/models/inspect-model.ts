import { basename } from "node:path";
import { readGgufFileInfo } from "node-llama-cpp";
import { quantizationOf } from "./local-models.js";

/** VRAM and RAM for one context configuration, from the same estimator the scheduler uses. */
export interface ContextEstimate {
  context_size: number;
  sequences: number;
  /** Full GPU offload: weights + KV cache + compute buffers. */
  vram_bytes: number;
  /** CPU-only load. */
  ram_bytes: number;
}

export interface ModelInspection {
  file: string;
  path: string;
  size_bytes: number;
  architecture: string;
  /** `general.name`, when set. */
  name: string | null;
  quantization: string | null;
  parameters: number;
  layers: number;
  train_context_size: number;
  embedding_length: number | null;
  has_chat_template: boolean;
  /** Every metadata key, flattened (`llama.context_length`); arrays shown as `[N items]`. */
  metadata: Record<string, string | number | boolean | null>;
  estimates: ContextEstimate[];
}

/** Context sizes `inspect` estimates at: these, up to the training context, and the training context itself. */
export const INSPECT_CONTEXT_SIZES = [512, 2048, 4096, 8192, 32768, 131072] as const;

function flatten(value: unknown, prefix: string, out: ModelInspection["metadata"]): void {
  if (Array.isArray(value) || ArrayBuffer.isView(value)) {
    out[prefix] = `[${(value as ArrayLike<unknown>).length} items]`;
  } else if (value !== null && typeof value === "object") {
    for (const [key, inner] of Object.entries(value)) flatten(inner, prefix ? `${prefix}.${key}` : key, out);
  } else if (typeof value === "bigint") {
    out[prefix] = Number(value);
  } else if (typeof value === "string") {
    out[prefix] = value.length > 200 ? `${value.slice(0, 200)}… (${value.length} characters)` : value;
  } else if (typeof value === "number" || typeof value === "boolean" || value === null) {
    out[prefix] = value;
  } else {
    out[prefix] = String(value);
  }
}

/** Reads a GGUF's header and estimates its needs at a few context sizes (`sequences` each). */
export async function inspectModel(
  path: string,
  sequences = 1,
  contextSizes?: readonly number[],
): Promise<ModelInspection> {
  const { inspectGguf, estimateResources } = await import("@corral/scheduler");
  const summary = await inspectGguf(path);
  const info = await readGgufFileInfo(path, { sourceType: "filesystem", logWarnings: false });
  const metadata: ModelInspection["metadata"] = {};
  flatten(info.metadata, "", metadata);
  const train = summary.trainContextSize;
  const sizes = contextSizes ?? [
    ...new Set([...INSPECT_CONTEXT_SIZES.filter((s) => train === 0 || s < train), ...(train > 0 ? [train] : [])]),
  ];
  const estimates = sizes.map((contextSize) => {
    const e = estimateResources(summary.insights, { contextSize, sequences });
    return { context_size: contextSize, sequences, vram_bytes: e.vramBytes, ram_bytes: e.ramBytes };
  });
  const name = info.metadata.general?.name;
  return {
    file: basename(path),
    path,
    size_bytes: summary.fileSizeBytes,
    architecture: summary.architecture,
    name: typeof name === "string" ? name : null,
    quantization: quantizationOf(info),
    parameters: summary.parameters,
    layers: summary.layers,
    train_context_size: train,
    embedding_length: summary.embeddingLength,
    has_chat_template: summary.hasChatTemplate,
    metadata,
    estimates,
  };
}
