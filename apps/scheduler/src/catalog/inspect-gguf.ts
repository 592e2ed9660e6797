import { open, stat } from "node:fs/promises";
import { GgufInsights, readGgufFileInfo, type GgufFileInfo } from "node-llama-cpp";

/** What the catalog takes from a GGUF header. */
export interface GgufSummary {
  fileSizeBytes: number;
  /** File modification time, ms since the epoch. */
  modifiedAt: number;
  architecture: string;
  parameters: number;
  /** Repeating blocks + the output layer, as node-llama-cpp counts `gpuLayers`. */
  layers: number;
  /** Training context size; 0 when the GGUF does not say. */
  trainContextSize: number;
  embeddingLength: number | null;
  hasChatTemplate: boolean;
  insights: GgufInsights;
}

/** Resource needs of one model at one context configuration. */
export interface ResourceEstimate {
  /** Weights + KV cache + compute buffers on the GPU at full offload. */
  vramBytes: number;
  /** Weights + KV cache + compute buffers in RAM for a CPU-only load. */
  ramBytes: number;
}

/** A file that could not be read as a GGUF model. */
export class InvalidGgufError extends Error {
  override readonly name = "InvalidGgufError";
  readonly file: string;
  /** Why, e.g. the parser's message or `file is truncated: …`. */
  readonly reason: string;
  constructor(file: string, reason: string, cause?: unknown) {
    super(`${file} is not a usable GGUF model: ${reason}`, cause === undefined ? undefined : { cause });
    this.file = file;
    this.reason = reason;
  }
}

/**
 * Reads the GGUF header (metadata and tensor info, no weights) of `path` and sums it up.
 * Throws {@link InvalidGgufError} when the file is not a GGUF, is cut short, or has no
 * tensors.
 */
export async function inspectGguf(path: string): Promise<GgufSummary> {
  const stats = await stat(path);
  await checkPreamble(path);
  let info: GgufFileInfo;
  try {
    info = await readGgufFileInfo(path, { sourceType: "filesystem", logWarnings: false });
  } catch (error) {
    throw new InvalidGgufError(path, (error as Error).message, error);
  }
  const tensors = info.fullTensorInfo ?? info.tensorInfo ?? [];
  if (tensors.length === 0) throw new InvalidGgufError(path, "the header lists no tensors");
  const architecture: string | undefined = info.metadata.general?.architecture;
  if (typeof architecture !== "string" || architecture === "")
    throw new InvalidGgufError(path, "general.architecture is missing");

  let insights: GgufInsights;
  try {
    // Without a Llama instance, node-llama-cpp uses a shared backend-less one: enough for
    // the formula estimators, and it never touches a GPU.
    insights = await GgufInsights.from(info);
  } catch (error) {
    throw new InvalidGgufError(path, (error as Error).message, error);
  }

  // The header can be intact while the weights are cut short (an interrupted copy).
  // Tensor data starts where the first tensor's file offset minus its relative offset
  // points; it spans at least the tensors' total size.
  if (info.splicedParts <= 1) {
    const first = tensors[0]!;
    const dataStart = Number(first.fileOffset) - Number(first.offset);
    const needed = dataStart + insights.modelSize;
    if (stats.size < needed)
      throw new InvalidGgufError(path, `file is truncated: ${stats.size} bytes, the tensors need at least ${needed}`);
  }

  const chatTemplate = info.metadata.tokenizer?.chat_template;
  const embedding = insights.embeddingVectorSize;
  return {
    fileSizeBytes: stats.size,
    modifiedAt: Math.floor(stats.mtimeMs),
    architecture,
    parameters: insights.totalParameters,
    layers: insights.totalLayers,
    trainContextSize: insights.trainContextSize ?? 0,
    embeddingLength: typeof embedding === "number" ? embedding : null,
    hasChatTemplate: typeof chatTemplate === "string" && chatTemplate.trim() !== "",
    insights,
  };
}

/** Sanity bounds on the header counts; real models stay far below them. */
const MAX_TENSORS = 1_000_000;
const MAX_METADATA_KEYS = 100_000;

/**
 * Checks the fixed 24-byte preamble (magic, version, tensor and metadata counts) before
 * the full parse. node-llama-cpp's reader fills reads past the end of the file with
 * zeros, so a damaged count could otherwise keep it reading for a very long time.
 */
async function checkPreamble(path: string): Promise<void> {
  const handle = await open(path, "r");
  const preamble = Buffer.alloc(24);
  let read: number;
  try {
    ({ bytesRead: read } = await handle.read(preamble, 0, preamble.length, 0));
  } finally {
    await handle.close();
  }
  if (read < preamble.length) throw new InvalidGgufError(path, `file is too short for a GGUF header (${read} bytes)`);
  const magic = preamble.subarray(0, 4).toString("latin1");
  if (magic !== "GGUF") throw new InvalidGgufError(path, `wrong magic ${JSON.stringify(magic)} (expected "GGUF")`);
  const version = preamble.readUInt32LE(4);
  if (version < 2 || version > 3) throw new InvalidGgufError(path, `unsupported GGUF version ${version}`);
  const tensors = preamble.readBigUInt64LE(8);
  const keys = preamble.readBigUInt64LE(16);
  if (tensors > BigInt(MAX_TENSORS) || keys > BigInt(MAX_METADATA_KEYS))
    throw new InvalidGgufError(path, `implausible header: ${tensors} tensors, ${keys} metadata keys`);
}

/**
 * Estimates VRAM for a full offload and RAM for a CPU-only load at `contextSize ×
 * sequences`, with node-llama-cpp's formula estimators. The V2 estimators simulate with
 * the real backend and report 0 on a machine without a GPU, so they are not used.
 */
export function estimateResources(
  insights: GgufInsights,
  { contextSize, sequences }: { contextSize: number; sequences: number },
): ResourceEstimate {
  const gpuLayers = insights.totalLayers;
  const gpuModel = insights.estimateModelResourceRequirements({ gpuLayers });
  const gpuContext = insights.estimateContextResourceRequirements({
    contextSize,
    sequences,
    modelGpuLayers: gpuLayers,
  });
  const cpuModel = insights.estimateModelResourceRequirements({ gpuLayers: 0 });
  const cpuContext = insights.estimateContextResourceRequirements({ contextSize, sequences, modelGpuLayers: 0 });
  return {
    vramBytes: Math.ceil(gpuModel.gpuVram + gpuContext.gpuVram),
    ramBytes: Math.ceil(cpuModel.cpuRam + cpuContext.cpuRam),
  };
}
