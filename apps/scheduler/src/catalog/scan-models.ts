import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { CatalogModel } from "@corral/shared";
import { readModelsFile, MODELS_FILE_NAME, UNSUPPORTED_SPLIT_KEYS, type ModelsFileEntry } from "./models-file.js";
import { estimateResources, inspectGguf, InvalidGgufError, type GgufSummary } from "./inspect-gguf.js";
import { inspectWhisper, InvalidWhisperModelError, type WhisperSummary } from "./inspect-whisper.js";

export interface ScanModelsOptions {
  /**
   * Folder holding the `.gguf` files, whisper.cpp `.bin` models (there or in its `whisper/`
   * subfolder) and an optional `models.yaml`.
   */
  modelsDir: string;
  /**
   * Context size per sequence for models that `models.yaml` does not configure; capped
   * at the model's training context.
   * @defaultValue 4096
   */
  defaultContextSize?: number;
  /**
   * Parallel sequences per loaded model, unless `models.yaml` says otherwise.
   * @defaultValue 1
   */
  defaultSequences?: number;
  logger: Logger;
}

const SPLIT_PART = /-(\d{5})-of-(\d{5})\.gguf$/i;
/** A whisper.cpp ggml model file. */
const WHISPER_FILE = /\.bin$/i;
/** The subfolder of the models folder also scanned for whisper.cpp models. */
export const WHISPER_SUBFOLDER = "whisper";

/**
 * Builds the catalog entries for the GGUF files in `modelsDir` (not recursive) and the
 * whisper.cpp `.bin` models there and in its `whisper/` subfolder (`kind: "whisper"`),
 * reading only their headers. `models.yaml` entries come first, in file order, then the files it
 * does not mention, by name.
 *
 * - A missing folder gives an empty list and a warning.
 * - A bad `models.yaml` throws a `ModelsFileError` naming the file and the field.
 * - A file that is not a usable GGUF (or whisper.cpp model) is skipped with one warning naming it.
 * - Duplicate ids or aliases: the first model keeps the name, with a warning.
 */
export async function scanModels(options: ScanModelsOptions): Promise<CatalogModel[]> {
  const { modelsDir, defaultContextSize = 4096, defaultSequences = 1 } = options;
  if (!Number.isInteger(defaultContextSize) || defaultContextSize < 1)
    throw new RangeError(`defaultContextSize must be a positive integer (got ${defaultContextSize})`);
  if (!Number.isInteger(defaultSequences) || defaultSequences < 1)
    throw new RangeError(`defaultSequences must be a positive integer (got ${defaultSequences})`);
  const log = options.logger.child({ component: "catalog", modelsDir });

  let names: string[];
  try {
    names = (await readdir(modelsDir, { withFileTypes: true }))
      .filter((entry) => (entry.isFile() || entry.isSymbolicLink()) && /\.(gguf|bin)$/i.test(entry.name))
      .filter((entry) => !entry.name.startsWith("."))
      .filter((entry) => Number(SPLIT_PART.exec(entry.name)?.[1] ?? 1) === 1)
      .map((entry) => entry.name)
      .concat(await whisperSubfolderFiles(modelsDir))
      .sort();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") {
      log.warn({ code }, "models folder %s does not exist; the catalog is empty", modelsDir);
      return [];
    }
    throw error;
  }

  const configured = (await readModelsFile(modelsDir)) ?? [];
  const mentioned = new Set(configured.map((entry) => entry.file));
  const entries: ModelsFileEntry[] = [
    ...configured,
    ...names.filter((name) => !mentioned.has(name)).map((file) => ({ file, aliases: [] })),
  ];

  // Inspect each file once, even when models.yaml lists it under several ids.
  const summaries = new Map<string, GgufSummary | WhisperSummary | null>();
  for (const { file } of entries) {
    if (summaries.has(file)) continue;
    summaries.set(file, await inspectOrWarn(join(modelsDir, file), file, log));
  }

  const taken = new Map<string, string>();
  const models: CatalogModel[] = [];
  for (const entry of entries) {
    const summary = summaries.get(entry.file);
    if (!summary) continue;
    const id = entry.id ?? entry.file.replace(/^.*[\\/]/, "").replace(/\.(gguf|bin)$/i, "");
    const owner = taken.get(id);
    if (owner !== undefined) {
      log.warn({ file: entry.file, id }, "skipping %s: the name %s already belongs to %s", entry.file, id, owner);
      continue;
    }
    taken.set(id, entry.file);
    const aliases: string[] = [];
    for (const alias of entry.aliases) {
      if (alias === id || aliases.includes(alias)) continue;
      const aliasOwner = taken.get(alias);
      if (aliasOwner !== undefined) {
        log.warn(
          { file: entry.file, alias },
          "alias %s of %s dropped: it already belongs to %s",
          alias,
          id,
          aliasOwner,
        );
        continue;
      }
      taken.set(alias, entry.file);
      aliases.push(alias);
    }

    if (!("insights" in summary)) {
      models.push(whisperModel(entry, id, aliases, summary));
      continue;
    }

    const refused = UNSUPPORTED_SPLIT_KEYS.filter((key) => entry[key] !== undefined);
    if (refused.length > 0)
      log.warn(
        { id, keys: refused },
        "%s: %s not applied: node-llama-cpp 3.21.1 cannot pass split_mode or tensor_split to llama.cpp, " +
          "so a group of GPUs splits the model by whole layers in proportion to each GPU's free memory (llama.cpp's default)",
        id,
        refused.join(" and "),
      );
    const trainContext = summary.trainContextSize;
    const contextSize =
      entry.context_size ?? (trainContext > 0 ? Math.min(defaultContextSize, trainContext) : defaultContextSize);
    if (trainContext > 0 && contextSize > trainContext)
      log.warn(
        { id, contextSize, trainContext },
        "%s: context_size %d exceeds the training context %d",
        id,
        contextSize,
        trainContext,
      );
    const sequences = entry.sequences ?? defaultSequences;
    const estimate = estimateResources(summary.insights, { contextSize, sequences });
    const override = entry.vram ?? null;
    models.push({
      id,
      aliases,
      kind: "llm",
      file: entry.file,
      file_size_bytes: summary.fileSizeBytes,
      architecture: summary.architecture,
      parameters: summary.parameters,
      layers: summary.layers,
      train_context_size: trainContext,
      context_size: contextSize,
      sequences,
      embedding_length: summary.embeddingLength,
      has_chat_template: summary.hasChatTemplate,
      estimated_vram_bytes: estimate.vramBytes,
      estimated_ram_bytes: estimate.ramBytes,
      vram_override_bytes: override,
      requirement_bytes: override ?? estimate.vramBytes,
      placement: catalogPlacement(entry),
      created_at: summary.modifiedAt,
    });
  }
  log.debug({ models: models.length }, "scanned models");
  return models;
}

/** A models.yaml `placement:` as the catalog carries it (null when absent or empty). */
function catalogPlacement(entry: ModelsFileEntry): CatalogModel["placement"] {
  const pins = entry.placement;
  if (pins === undefined) return null;
  const placement: NonNullable<CatalogModel["placement"]> = {
    ...(pins.hosts ? { hosts: pins.hosts } : {}),
    ...(pins.gpu_names ? { gpu_names: pins.gpu_names } : {}),
    ...(pins.gpus ? { gpus: pins.gpus } : {}),
    ...(pins.min_vram === undefined ? {} : { min_vram_bytes: pins.min_vram }),
  };
  return Object.keys(placement).length === 0 ? null : placement;
}

/**
 * A whisper.cpp model's catalog entry: one sequence, its text context as the context, and
 * the memory estimate of {@link inspectWhisper} as its requirement (unless models.yaml sets `vram`).
 */
function whisperModel(entry: ModelsFileEntry, id: string, aliases: string[], summary: WhisperSummary): CatalogModel {
  const { hparams } = summary;
  const override = entry.vram ?? null;
  return {
    id,
    aliases,
    kind: "whisper",
    file: entry.file,
    file_size_bytes: summary.fileSizeBytes,
    architecture: "whisper",
    parameters: summary.parameters,
    layers: hparams.nAudioLayer + hparams.nTextLayer,
    train_context_size: hparams.nTextCtx,
    context_size: hparams.nTextCtx,
    sequences: 1,
    embedding_length: null,
    has_chat_template: false,
    estimated_vram_bytes: summary.memoryBytes,
    estimated_ram_bytes: summary.memoryBytes,
    vram_override_bytes: override,
    requirement_bytes: override ?? summary.memoryBytes,
    placement: catalogPlacement(entry),
    created_at: summary.modifiedAt,
  };
}

/** The `.bin` files of the `whisper/` subfolder, as paths relative to the models folder (none when it is absent). */
async function whisperSubfolderFiles(modelsDir: string): Promise<string[]> {
  try {
    return (await readdir(join(modelsDir, WHISPER_SUBFOLDER), { withFileTypes: true }))
      .filter((entry) => (entry.isFile() || entry.isSymbolicLink()) && WHISPER_FILE.test(entry.name))
      .filter((entry) => !entry.name.startsWith("."))
      .map((entry) => `${WHISPER_SUBFOLDER}/${entry.name}`);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return [];
    throw error;
  }
}

/** Inspects one file (a `.bin` as a whisper.cpp model); a bad one gives null and exactly one warning naming it. */
async function inspectOrWarn(path: string, file: string, log: Logger): Promise<GgufSummary | WhisperSummary | null> {
  const whisper = WHISPER_FILE.test(file);
  try {
    return whisper ? await inspectWhisper(path) : await inspectGguf(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      log.warn({ file }, "%s lists %s, which does not exist; skipped", MODELS_FILE_NAME, file);
    } else if (whisper) {
      const reason = error instanceof InvalidWhisperModelError ? error.reason : (error as Error).message;
      log.warn({ file, reason }, "skipping %s: not a usable whisper.cpp model (%s)", file, reason);
    } else {
      const reason = error instanceof InvalidGgufError ? error.reason : (error as Error).message;
      log.warn({ file, reason }, "skipping %s: not a usable GGUF model (%s)", file, reason);
    }
    return null;
  }
}
