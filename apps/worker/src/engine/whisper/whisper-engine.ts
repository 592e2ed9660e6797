import { open, stat } from "node:fs/promises";
import type { Logger } from "pino";
import { ModelFileError } from "../errors.js";
import { modelFilePath } from "../model-file.js";
import { WhisperModel } from "./whisper-model.js";

export interface WhisperEngineOptions {
  /**
   * whisper.cpp threads of each run: the slot's threads. More threads than cores is much
   * slower (4 threads on 2 cores took 6-8× as long as 1).
   * @defaultValue 1
   */
  threads?: number;
  /**
   * The models folder: `load` refuses (ModelFileError) a path outside it (see `modelFilePath`).
   * @defaultValue none (any path loads)
   */
  modelsDir?: string;
  /** The engine logs through a child named "whisper". */
  logger: Logger;
}

/** whisper.cpp's ggml model files start with the magic 0x67676d6c, little-endian ("lmgg"). */
const GGML_MAGIC = 0x67676d6c;

/**
 * The Whisper engine of a slot: loads whisper.cpp ggml `.bin` models (catalog `kind:
 * "whisper"`), each in its own whisper host process. Create with `WhisperEngine.create`;
 * `close()` stops every model it loaded.
 */
export class WhisperEngine {
  readonly #threads: number;
  readonly #modelsDir: string | undefined;
  readonly #log: Logger;
  readonly #models = new Set<WhisperModel>();
  #closed = false;

  private constructor(options: WhisperEngineOptions) {
    this.#threads = options.threads ?? 1;
    this.#modelsDir = options.modelsDir;
    this.#log = options.logger.child({ component: "whisper" });
  }

  static async create(options: WhisperEngineOptions): Promise<WhisperEngine> {
    const threads = options.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1)
      throw new RangeError(`threads must be a positive integer, got ${threads}`);
    return new WhisperEngine(options);
  }

  get loadedModels(): readonly WhisperModel[] {
    return [...this.#models];
  }

  /** Loads a ggml `.bin` Whisper model. Throws ModelFileError for a missing or invalid file. */
  async load(options: { modelId: string; path: string }): Promise<WhisperModel> {
    if (this.#closed) throw new Error("the Whisper engine is closed");
    const path = this.#modelsDir === undefined ? options.path : modelFilePath(this.#modelsDir, options.path);
    await checkWhisperFile(path);
    const model = await WhisperModel.create({
      modelId: options.modelId,
      path,
      threads: this.#threads,
      logger: this.#log.child({ model: options.modelId }),
      onDispose: (m) => this.#models.delete(m),
    });
    if (this.#closed) {
      await model.dispose();
      throw new Error("the Whisper engine is closed");
    }
    this.#models.add(model);
    return model;
  }

  /** Stops every model. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const model of [...this.#models]) {
      try {
        await model.dispose();
      } catch (error) {
        this.#log.warn({ err: error, model: model.modelId }, "whisper model dispose failed");
      }
    }
  }
}

/** Checks that `path` is a readable file that starts with whisper.cpp's ggml magic. */
export async function checkWhisperFile(path: string): Promise<void> {
  const header = Buffer.alloc(4);
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new ModelFileError(path, "is not a regular file");
    const handle = await open(path, "r");
    try {
      await handle.read(header, 0, 4, 0);
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof ModelFileError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new ModelFileError(path, "does not exist", { cause: error });
    throw new ModelFileError(path, `cannot be read (${code ?? String(error)})`, { cause: error });
  }
  if (header.readUInt32LE(0) !== GGML_MAGIC)
    throw new ModelFileError(path, "is not a whisper.cpp ggml model (no ggml magic at its start)");
}
