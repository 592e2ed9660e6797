import { readdir, stat } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import type { CatalogModel } from "@corral/shared";
import { GgufFileType, readGgufFileInfo, type GgufFileInfo } from "node-llama-cpp";
import { pino } from "pino";
import { splitPartOf, splitParts } from "./model-ref.js";

/** One model file (or split model) in the models folder. */
export interface LocalModel {
  /** The file the catalog serves: the single file, or part 1 of a split model. */
  file: string;
  /** Every file of the model (one, or each part). */
  parts: string[];
  size_bytes: number;
  /** From the GGUF header; null when the file is not a usable GGUF. */
  architecture: string | null;
  /** `Q4_K_M`, `F16`, … from `general.file_type`. */
  quantization: string | null;
  parameters: number | null;
  train_context_size: number | null;
  /** The ids the catalog serves it under; empty when it skips the file. */
  catalog_ids: string[];
  /** Why the catalog skips it (not a GGUF, cut short, parts missing), else null. */
  problem: string | null;
}

/** The catalog defaults the scheduler uses, unless CORRAL_CONTEXT_SIZE / CORRAL_SEQUENCES say otherwise. */
export interface CatalogDefaults {
  contextSize: number;
  sequences: number;
}

/** `MOSTLY_Q4_K_M` → `Q4_K_M`; unknown numbers → `type 42`. */
export function quantizationName(fileType: unknown): string | null {
  if (typeof fileType !== "number") return null;
  const name = (GgufFileType as unknown as Record<number, string | undefined>)[fileType];
  return name ? name.replace(/^(MOSTLY|ALL)_/, "") : `type ${fileType}`;
}

/** The quantization in a GGUF header. */
export function quantizationOf(info: GgufFileInfo): string | null {
  return quantizationName((info.metadata.general as { file_type?: unknown } | undefined)?.file_type);
}

/** Runs the scheduler's own scan of the folder (silently) and returns its catalog. */
export async function scanCatalog(modelsDir: string, defaults: CatalogDefaults): Promise<CatalogModel[]> {
  const { scanModels } = await import("@corral/scheduler");
  return scanModels({
    modelsDir,
    defaultContextSize: defaults.contextSize,
    defaultSequences: defaults.sequences,
    logger: pino({ level: "silent" }),
  });
}

/** The models in `modelsDir`, split parts grouped under their first part, with what the catalog makes of each. */
export async function listLocalModels(modelsDir: string, defaults: CatalogDefaults): Promise<LocalModel[]> {
  let names: string[];
  try {
    names = (await readdir(modelsDir, { withFileTypes: true }))
      .filter((e) => (e.isFile() || e.isSymbolicLink()) && /\.gguf$/i.test(e.name) && !e.name.startsWith("."))
      .map((e) => e.name)
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const catalog = await scanCatalog(modelsDir, defaults);
  const present = new Set(names);
  const grouped = new Set<string>();
  const models: LocalModel[] = [];
  for (const name of names) {
    if (grouped.has(name)) continue;
    const split = splitPartOf(name);
    const parts = split ? splitParts(name).filter((p) => present.has(p)) : [name];
    for (const part of parts) grouped.add(part);
    const first = split ? splitParts(name)[0]! : name;
    const missing = split ? splitParts(name).filter((p) => !present.has(p)) : [];
    let size = 0;
    for (const part of parts) size += (await stat(join(modelsDir, part))).size;
    const model: LocalModel = {
      file: first,
      parts,
      size_bytes: size,
      architecture: null,
      quantization: null,
      parameters: null,
      train_context_size: null,
      catalog_ids: catalog.filter((m) => m.file === first).map((m) => m.id),
      problem: missing.length > 0 ? `parts missing: ${missing.join(", ")}` : null,
    };
    const entry = catalog.find((m) => m.file === first);
    if (entry) {
      model.architecture = entry.architecture;
      model.parameters = entry.parameters;
      model.train_context_size = entry.train_context_size;
    }
    if (missing.length === 0) {
      try {
        const info = await readGgufFileInfo(join(modelsDir, first), { sourceType: "filesystem", logWarnings: false });
        model.quantization = quantizationOf(info);
        model.architecture ??= (info.metadata.general?.architecture as string | undefined) ?? null;
      } catch (error) {
        model.problem ??= `not a usable GGUF (${(error as Error).message})`;
      }
      if (!entry && model.problem === null) {
        // The scan skipped it: say why, with the same check the scheduler runs.
        const { inspectGguf } = await import("@corral/scheduler");
        try {
          await inspectGguf(join(modelsDir, first));
          model.problem = "not in the catalog (another model took its id? see the scheduler's log)";
        } catch (error) {
          model.problem = (error as { reason?: string }).reason ?? (error as Error).message;
        }
      }
    }
    models.push(model);
  }
  return models;
}

/**
 * Finds a model by what the user typed: a path to a file, a file name in the folder (with
 * or without `.gguf`), or a catalog id or alias. Returns the served file's absolute path, or null.
 */
export async function findModelFile(
  name: string,
  modelsDir: string,
  defaults: CatalogDefaults,
): Promise<{ path: string; file: string } | null> {
  const candidates = [
    isAbsolute(name) || name.includes("/") ? resolve(name) : null,
    join(modelsDir, name),
    join(modelsDir, `${name}.gguf`),
  ].filter((c): c is string => c !== null);
  for (const path of candidates) {
    try {
      if ((await stat(path)).isFile()) return { path: resolve(path), file: path.replace(/^.*[\\/]/, "") };
    } catch {
      // try the next
    }
  }
  const catalog = await scanCatalog(modelsDir, defaults);
  const hit = catalog.find((m) => m.id === name || m.aliases.includes(name));
  return hit ? { path: resolve(modelsDir, hit.file), file: hit.file } : null;
}

/** CORRAL_CONTEXT_SIZE and CORRAL_SEQUENCES as the scheduler reads them, else its defaults (4096, 4). */
export function catalogDefaults(env: Record<string, string | undefined>): CatalogDefaults {
  const positive = (value: string | undefined, fallback: number) => {
    const n = Number(value);
    return value !== undefined && Number.isInteger(n) && n > 0 ? n : fallback;
  };
  return { contextSize: positive(env.CORRAL_CONTEXT_SIZE, 4096), sequences: positive(env.CORRAL_SEQUENCES, 4) };
}
