import { mkdir, open, readdir, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { CliError } from "../errors.js";

/**
 * Where the demo model comes from when the models directory holds no .gguf file:
 * `hf:ggml-org/models/tinyllamas/stories260K.gguf`, resolved to its https URL so that a
 * preflight request can fail fast (node-llama-cpp's downloader retries server errors for minutes).
 */
export const DEMO_MODEL_URI = "https://huggingface.co/ggml-org/models/resolve/main/tinyllamas/stories260K.gguf";
export const DEMO_MODEL_FILE = "stories260K.gguf";

export interface EnsureDemoModelOptions {
  /** The models directory (`CORRAL_MODELS_DIR`). Created when missing. */
  modelsDir: string;
  /**
   * What to download: an `hf:` URI or an http(s) URL.
   * @defaultValue {@link DEMO_MODEL_URI}
   */
  url?: string;
  /** @defaultValue {@link DEMO_MODEL_FILE} */
  fileName?: string;
  /** Progress lines (`info`) go here. */
  logger?: { info(message: string): void };
  /**
   * Show node-llama-cpp's download progress bar on the terminal.
   * @defaultValue false
   */
  showProgress?: boolean;
  /**
   * Limit for the preflight request of an http(s) URL (answer headers and the first bytes).
   * @defaultValue 20000
   */
  preflightTimeoutMs?: number;
}

export interface EnsureDemoModelResult {
  /** Whether this call downloaded a file. */
  downloaded: boolean;
  /** The .gguf files now in the directory. */
  files: string[];
  /** The downloaded file's path, when `downloaded`. */
  path?: string;
}

/** The `.gguf` files directly in `dir` (none when it does not exist). */
export async function listGgufFiles(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries
      .filter((e) => (e.isFile() || e.isSymbolicLink()) && e.name.toLowerCase().endsWith(".gguf"))
      .map((e) => e.name)
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

/**
 * Makes sure `modelsDir` holds at least one .gguf model. When it holds none, downloads
 * the tiny TinyStories model (stories260K, about 1.2 MB) with node-llama-cpp's
 * downloader. A failed download raises a CliError that says how to provide a model by hand.
 */
export async function ensureDemoModel(options: EnsureDemoModelOptions): Promise<EnsureDemoModelResult> {
  const modelsDir = resolve(options.modelsDir);
  const existing = await listGgufFiles(modelsDir);
  if (existing.length > 0) return { downloaded: false, files: existing };

  const url = options.url ?? DEMO_MODEL_URI;
  const fileName = options.fileName ?? DEMO_MODEL_FILE;
  const target = join(modelsDir, fileName);
  const manual =
    `download it yourself (\`curl -L -o ${target} ${DEMO_MODEL_URI}\`), or put any .gguf model in ${modelsDir}, ` +
    "or set CORRAL_MODELS_DIR (--models-dir) to a folder that holds one";
  options.logger?.info(`no .gguf model in ${modelsDir}; downloading ${fileName} from ${url}`);
  try {
    if (/^https?:/i.test(url)) await preflight(url, options.preflightTimeoutMs ?? 20_000);
    await mkdir(modelsDir, { recursive: true });
    const { createModelDownloader } = await import("node-llama-cpp");
    const downloader = await createModelDownloader({
      modelUri: url,
      dirPath: modelsDir,
      fileName,
      showCliProgress: options.showProgress ?? false,
      skipExisting: false,
      deleteTempFileOnCancel: true,
    });
    await downloader.download();
    await assertGguf(target);
  } catch (error) {
    await rm(target, { force: true }).catch(() => undefined);
    const reason = describeError(error);
    throw new CliError(`could not download the demo model from ${url}: ${reason}`, { hint: manual, cause: error });
  }
  const size = (await stat(target)).size;
  options.logger?.info(`downloaded ${target} (${size} bytes)`);
  return { downloaded: true, files: await listGgufFiles(modelsDir), path: target };
}

/** Checks the GGUF magic, so an HTML error page saved as .gguf is caught here. */
async function assertGguf(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    const magic = Buffer.alloc(4);
    await handle.read(magic, 0, 4, 0);
    if (magic.toString("latin1") !== "GGUF") throw new Error(`${path} is not a GGUF file`);
  } finally {
    await handle.close();
  }
}

/**
 * Asks for the first 4 bytes: a 4xx/5xx, a refused connection or something that is not
 * GGUF fails here at once, instead of in the downloader's retry loop.
 */
async function preflight(url: string, timeoutMs: number): Promise<void> {
  const response = await fetch(url, { headers: { range: "bytes=0-3" }, signal: AbortSignal.timeout(timeoutMs) });
  try {
    if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`.trim());
    const reader = response.body?.getReader();
    let head = Buffer.alloc(0);
    while (reader && head.length < 4) {
      const { done, value } = await reader.read();
      if (done) break;
      head = Buffer.concat([head, value]);
    }
    if (head.subarray(0, 4).toString("latin1") !== "GGUF") throw new Error("the server's answer is not a GGUF file");
  } finally {
    await response.body?.cancel().catch(() => undefined);
  }
}

/** `fetch failed` hides the reason in `cause`: show `ECONNREFUSED` and the like. */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error.name === "TimeoutError") return "no answer in time";
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  const detail = typeof cause?.code === "string" ? cause.code : typeof cause?.message === "string" ? cause.message : "";
  return detail && !error.message.includes(detail) ? `${error.message} (${detail})` : error.message;
}
