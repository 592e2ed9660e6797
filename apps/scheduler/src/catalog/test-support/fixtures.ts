import { mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino, type Logger } from "pino";
import { sharedModelsDir } from "../../../../../test/support/models.js";

export interface LogLine {
  level: number;
  msg: string;
  file?: string;
  [key: string]: unknown;
}

/** A debug-level pino logger whose lines land in `lines`. */
export function capturingLogger(): { logger: Logger; lines: LogLine[]; warnings: () => LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines, warnings: () => lines.filter((line) => line.level === 40) };
}

/** A fresh folder under the OS temp dir; `remove()` deletes it. */
export async function tempModelsDir(label: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `corral-catalog-${label}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Symlinks the tiny real models into `dir` (never copies them into the repo). */
export async function linkSharedModels(dir: string, names = ["stories260K.gguf", "llama-2-tiny-random.gguf"]) {
  const source = sharedModelsDir();
  for (const name of names) await symlink(join(source, name), join(dir, name));
}
