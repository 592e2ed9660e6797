import { mkdir, open, readFile, rename, rm, stat, statfs, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { downloadFile, type PullProgress } from "./download-file.js";
import { PullError } from "./errors.js";
import { HfClient, type RemoteFile } from "./hf-client.js";
import { parseModelRef } from "./model-ref.js";

export interface PullModelOptions {
  /** `CORRAL_MODELS_DIR`; created when missing. */
  modelsDir: string;
  /** Hugging Face's base URL. @defaultValue https://huggingface.co */
  endpoint?: string;
  /** `HF_TOKEN`. */
  token?: string | undefined;
  /** The sha256 the file must have (one-file pulls), checked besides Hugging Face's own. */
  sha256?: string | undefined;
  /** Replace files already in the folder. @defaultValue false */
  force?: boolean;
  progress: PullProgress;
  /** @defaultValue 4 */
  retries?: number;
  /** @defaultValue 1000 */
  retryDelayMs?: number;
  /** @defaultValue 60000 */
  timeoutMs?: number;
  /** Free bytes on the folder's disk. @defaultValue statfs */
  freeBytes?: (dir: string) => Promise<number>;
}

export interface PulledFile {
  name: string;
  path: string;
  size: number;
  sha256: string;
  /** Whether a known sha256 (Hugging Face's or `--sha256`) was checked. */
  verified: boolean;
}

export interface PullModelResult {
  /** The files, in part order; the first is the one the catalog serves. */
  files: PulledFile[];
  /** True when every file was already in the folder, with the expected size. */
  alreadyPresent: boolean;
}

/** The hidden name a download is written under; the catalog skips dot files and non-.gguf names. */
export const partFileName = (name: string): string => `.${name}.part`;

/**
 * Takes `.<name>.lock` in the folder (holding this process's pid) so that two pulls of the
 * same file never append to one `.part`. A lock whose process is gone (a pull killed with
 * kill -9 or a closed terminal) is taken over.
 */
async function lockDownload(modelsDir: string, name: string): Promise<() => Promise<void>> {
  const path = join(modelsDir, `.${name}.lock`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, String(process.pid), { flag: "wx" });
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const pid = Number(await readFile(path, "utf8").catch(() => ""));
      let alive = false;
      try {
        alive = Number.isInteger(pid) && pid > 0 && (process.kill(pid, 0), true);
      } catch (probe) {
        alive = (probe as NodeJS.ErrnoException).code === "EPERM";
      }
      if (alive)
        throw new PullError(
          "exists",
          `another corral models pull (pid ${pid}) is downloading ${name} into ${modelsDir}`,
          {
            hint: "wait for it to finish; this pull would resume its partial file",
          },
        );
      await rm(path, { force: true });
    }
  }
  throw new PullError("exists", `could not lock ${path}`);
}

async function statfsFree(dir: string): Promise<number> {
  const fs = await statfs(dir);
  return Number(fs.bavail) * Number(fs.bsize);
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

/**
 * Whether the file starts with its format's magic: `GGUF`, or for a `.bin` whisper.cpp's
 * ggml magic (`lmgg` in the file).
 */
async function hasModelMagic(path: string, name: string): Promise<boolean> {
  const handle = await open(path, "r");
  try {
    const magic = Buffer.alloc(4);
    const { bytesRead } = await handle.read(magic, 0, 4, 0);
    return bytesRead === 4 && magic.toString("latin1") === (/\.bin$/i.test(name) ? "lmgg" : "GGUF");
  } finally {
    await handle.close();
  }
}

const units = (bytes: number): string =>
  bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

/**
 * Downloads a model into the models folder:
 * 1. resolves the reference (a HEAD per file, or the repo's file list for `:quant`);
 * 2. checks the free disk space against what is left to fetch;
 * 3. downloads each file to a hidden `.<name>.part`, resuming one left by an earlier pull;
 * 4. checks each file's sha256 (when known) and GGUF magic, removing it when wrong;
 * 5. renames the parts into place, the first part last, so the catalog never sees half a model.
 */
export async function pullModel(ref: string, options: PullModelOptions): Promise<PullModelResult> {
  const parsed = parseModelRef(ref);
  const client = new HfClient({
    endpoint: options.endpoint ?? "https://huggingface.co",
    token: options.token,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
  const wanted = options.sha256?.trim().toLowerCase();
  if (wanted !== undefined && !/^[0-9a-f]{64}$/.test(wanted))
    throw new PullError("bad_ref", `--sha256 must be 64 hex digits (got ${JSON.stringify(options.sha256)})`);
  const files: RemoteFile[] = await client.resolve(parsed);
  if (wanted !== undefined) {
    if (files.length !== 1)
      throw new PullError("bad_ref", `--sha256 checks one file, and ${ref} has ${files.length} parts`);
    const file = files[0]!;
    if (file.sha256 !== null && file.sha256 !== wanted)
      throw new PullError("checksum", `${file.name}: --sha256 ${wanted} differs from the server's ${file.sha256}`, {
        hint: "check the hash you passed; the server's is the one Hugging Face computed when the file was uploaded",
      });
    file.sha256 = wanted;
  }

  const modelsDir = resolve(options.modelsDir);
  await mkdir(modelsDir, { recursive: true });
  const existing = await Promise.all(files.map((f) => sizeOf(join(modelsDir, f.name))));
  if (!options.force && existing.some((size) => size !== null)) {
    const same = files.every((f, i) => existing[i] !== null && (f.size === null || existing[i] === f.size));
    if (same) {
      return {
        alreadyPresent: true,
        files: files.map((f, i) => ({
          name: f.name,
          path: join(modelsDir, f.name),
          size: existing[i]!,
          sha256: f.sha256 ?? "",
          verified: false,
        })),
      };
    }
    const clash = files.find((_, i) => existing[i] !== null)!;
    throw new PullError("exists", `${join(modelsDir, clash.name)} already exists and differs from ${ref}`, {
      hint: "pass --force to replace it, or `corral models rm` it first",
    });
  }

  // Disk space: what is left to fetch, after what partial files already hold.
  const partSizes = await Promise.all(files.map((f) => sizeOf(join(modelsDir, partFileName(f.name)))));
  if (files.every((f) => f.size !== null)) {
    const needed = files.reduce((sum, f, i) => sum + Math.max(0, f.size! - (partSizes[i] ?? 0)), 0);
    const free = await (options.freeBytes ?? statfsFree)(modelsDir);
    if (needed > free) {
      throw new PullError("disk_full", `${ref} needs ${units(needed)} more and ${modelsDir} has ${units(free)} free`, {
        hint: "free some space, or set CORRAL_MODELS_DIR (--models-dir) to a folder on a bigger disk",
      });
    }
  }

  const unlocks: (() => Promise<void>)[] = [];
  try {
    for (const file of files) unlocks.push(await lockDownload(modelsDir, file.name));
    return await downloadAll(files, modelsDir, options, client);
  } finally {
    for (const unlock of unlocks) await unlock().catch(() => undefined);
  }
}

async function downloadAll(
  files: RemoteFile[],
  modelsDir: string,
  options: PullModelOptions,
  client: HfClient,
): Promise<PullModelResult> {
  const pulled: PulledFile[] = [];
  for (const file of files) {
    const part = join(modelsDir, partFileName(file.name));
    const got = await downloadFile(file, part, {
      client,
      progress: options.progress,
      ...(options.retries === undefined ? {} : { retries: options.retries }),
      ...(options.retryDelayMs === undefined ? {} : { retryDelayMs: options.retryDelayMs }),
    });
    if (file.sha256 !== null && got.sha256 !== file.sha256) {
      await rm(part, { force: true });
      throw new PullError(
        "checksum",
        `${file.name}: sha256 ${got.sha256} does not match the expected ${file.sha256}; the download was removed`,
        {
          hint: "run the pull again; if it fails the same way, the file on the server or a proxy in between is damaged",
        },
      );
    }
    if (!(await hasModelMagic(part, file.name))) {
      await rm(part, { force: true });
      const what = /\.bin$/i.test(file.name) ? "a whisper.cpp ggml model" : "a GGUF file";
      throw new PullError("not_gguf", `${file.name}: what the server sent is not ${what}; it was removed`, {
        hint: "check the URL: it must point at the raw file (Hugging Face: /resolve/, not /blob/)",
      });
    }
    pulled.push({
      name: file.name,
      path: join(modelsDir, file.name),
      size: got.size,
      sha256: got.sha256,
      verified: file.sha256 !== null,
    });
  }
  // The catalog serves a split model by its first part: it goes last.
  for (const file of [...pulled].reverse()) await rename(join(modelsDir, partFileName(file.name)), file.path);
  return { files: pulled, alreadyPresent: false };
}
