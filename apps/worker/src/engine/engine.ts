import { performance } from "node:perf_hooks";
import { setImmediate as nextMacrotask } from "node:timers/promises";
import { acquireLlama, chatWrapperFor, type LlamaLease } from "@corral/llama";
import { DisposedError, LlamaLogLevel, type Llama, type LlamaContext, type LlamaModel } from "node-llama-cpp";
import type { Logger } from "pino";
import { ModelFileError, OutOfMemoryError, errorMessage, isOutOfMemory } from "./errors.js";
import { GrammarCache } from "./grammar-cache.js";
import { LoadedModel } from "./loaded-model.js";
import { checkModelFile, modelFilePath } from "./model-file.js";
import { ThreadCalibrationCache, calibrateThreads, threadCandidates } from "./thread-calibration.js";
import type { EngineBackend, EngineOptions, LoadOptions } from "./types.js";

const DEFAULTS = { gpu: "auto", threads: 1, calibrateThreads: false, prefixReuse: true } as const;
/** llama.cpp log lines kept to explain a failed load (it logs the cause, then returns a bare failure). */
const RECENT_LOG_LINES = 32;

/** {@link EngineOptions} with their defaults filled in. */
type ResolvedEngineOptions = Required<Pick<EngineOptions, "gpu" | "threads" | "calibrateThreads" | "prefixReuse">> &
  EngineOptions;

interface LogLine {
  seq: number;
  level: LlamaLogLevel;
  message: string;
}

/**
 * The inference engine of one slot: llama.cpp on one backend, any number of loaded
 * models. Create with `await Engine.create(options)`; `close()` disposes every model it
 * loaded. The llama.cpp runtime underneath is shared by all engines of the process and
 * stays loaded (see @corral/llama's acquireLlama); one engine per process is the normal case.
 */
export class Engine {
  /** Where llama.cpp runs: "cpu", or the GPU backend getLlama picked. */
  readonly backend: EngineBackend;

  readonly #llama: Llama;
  readonly #lease: LlamaLease;
  readonly #options: ResolvedEngineOptions;
  readonly #log: Logger;
  readonly #grammars: GrammarCache;
  readonly #recentLog: LogLine[];
  readonly #models = new Set<LoadedModel>();
  readonly #threadChoices = new ThreadCalibrationCache();
  #closing: Promise<void> | null = null;

  private constructor(lease: LlamaLease, options: ResolvedEngineOptions, log: Logger, recentLog: LogLine[]) {
    this.#lease = lease;
    this.#llama = lease.llama;
    this.#options = options;
    this.#log = log;
    this.#recentLog = recentLog;
    this.backend = this.#llama.gpu === false ? "cpu" : this.#llama.gpu;
    this.#grammars = new GrammarCache(this.#llama);
  }

  /**
   * Loads llama.cpp's prebuilt binary for the backend (`build: "never"`: a missing CUDA
   * binary fails fast instead of compiling at run time). llama.cpp's log goes to the
   * logger's "llama.cpp" child: errors at debug, the rest at trace.
   */
  static async create(options: EngineOptions): Promise<Engine> {
    const resolved = { ...DEFAULTS, ...options };
    if (!Number.isInteger(resolved.threads) || resolved.threads < 0) {
      throw new RangeError(`threads must be a non-negative integer, got ${resolved.threads}`);
    }
    const log = options.logger.child({ component: "engine" });
    const llamaLog = log.child({ component: "llama.cpp" });
    const recentLog: LogLine[] = [];
    let seq = 0;
    const lease = await acquireLlama(
      resolved.gpu,
      (level, message) => {
        if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal || level === LlamaLogLevel.warn) {
          recentLog.push({ seq: ++seq, level, message });
          if (recentLog.length > RECENT_LOG_LINES) recentLog.shift();
        }
        if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) llamaLog.debug({ level }, message);
        else llamaLog.trace({ level }, message);
      },
      llamaLog.isLevelEnabled("trace"),
    );
    const engine = new Engine(lease, resolved, log, recentLog);
    log.info({ backend: engine.backend, threads: resolved.threads }, "llama.cpp ready");
    return engine;
  }

  /** Models loaded and not disposed. */
  get loadedModels(): readonly LoadedModel[] {
    return [...this.#models];
  }

  /**
   * Loads a GGUF with full GPU offload (`gpuLayers: "max"`, 0 on the CPU) and creates one
   * context with `sequences` sequences of `contextSize` tokens each.
   * Throws ModelFileError (missing or invalid file), OutOfMemoryError (weights or
   * context don't fit), or the abort reason when `signal` fires.
   */
  async load(options: LoadOptions): Promise<LoadedModel> {
    if (this.#closing) throw new DisposedError();
    const { modelId, contextSize, sequences, signal } = options;
    const modelsDir = this.#options.modelsDir;
    const path = modelsDir === undefined ? options.path : modelFilePath(modelsDir, options.path);
    if (!Number.isInteger(contextSize) || contextSize < 1)
      throw new RangeError(`contextSize must be ≥ 1, got ${contextSize}`);
    if (!Number.isInteger(sequences) || sequences < 1) throw new RangeError(`sequences must be ≥ 1, got ${sequences}`);
    const log = this.#log.child({ model: modelId });
    const started = performance.now();

    await checkModelFile(path);
    const logMark = this.#logMark();
    const loadModel = this.#options.loadModel ?? ((llama, modelOptions) => llama.loadModel(modelOptions));
    let model: LlamaModel;
    try {
      model = await loadModel(this.#llama, {
        modelPath: path,
        gpuLayers: this.backend === "cpu" ? 0 : "max",
        loadSignal: signal,
      });
    } catch (error) {
      throw await this.#classifyLoadError(error, modelId, path, logMark, signal);
    }

    let threads: number;
    try {
      threads = await this.#threadsFor(model, path, log);
    } catch (error) {
      await disposeQuietly(model, log);
      throw error;
    }

    let context: LlamaContext;
    try {
      context = await model.createContext({
        // node-llama-cpp's contextSize is per sequence: it allocates contextSize × sequences cells.
        contextSize,
        sequences,
        threads,
        createSignal: signal,
        failedCreationRemedy: false,
      });
    } catch (error) {
      await disposeQuietly(model, log);
      await flushLlamaLog();
      if (!(signal?.aborted && error === signal.reason) && this.#isOutOfMemory(error, logMark)) {
        throw new OutOfMemoryError(modelId, "context", this.#explain(error, logMark), { cause: error });
      }
      throw error;
    }
    if (this.#closing) {
      await disposeQuietly(context, log);
      await disposeQuietly(model, log);
      throw new DisposedError();
    }

    const loaded = new LoadedModel({
      modelId,
      model,
      context,
      chatWrapper: chatWrapperFor(model),
      grammars: this.#grammars,
      threads,
      limits: this.#options.limits ?? null,
      prefixReuse: this.#options.prefixReuse,
      loadMs: performance.now() - started,
      logger: log,
      onDispose: (m) => this.#models.delete(m),
    });
    this.#models.add(loaded);
    log.info(
      {
        loadMs: Math.round(loaded.loadMs),
        contextSize: loaded.contextSize,
        sequences: loaded.sequences,
        gpuLayers: loaded.gpuLayers,
        threads,
        chatWrapper: loaded.chatWrapperName,
      },
      "model loaded",
    );
    for (const warning of model.getWarnings()) log.warn({ warning }, "model warning");
    return loaded;
  }

  /** Disposes every model this engine loaded. Idempotent; load() is refused afterwards. */
  close(): Promise<void> {
    this.#closing ??= this.#closeOnce();
    return this.#closing;
  }

  async #closeOnce(): Promise<void> {
    for (const model of [...this.#models]) {
      try {
        await model.dispose();
      } catch (error) {
        this.#log.warn({ err: error, model: model.modelId }, "model dispose failed");
      }
    }
    // The llama.cpp runtime is process-wide (see @corral/llama's acquireLlama): stop listening, keep it.
    this.#lease.release();
  }

  /**
   * The threads of the model's contexts: `threads`, or with `calibrateThreads` on the CPU
   * the faster of 1 and `threads` as timed on this model (once per file). A calibration
   * that fails (e.g. no memory for a scratch context) falls back to `threads`.
   */
  async #threadsFor(model: LlamaModel, path: string, log: Logger): Promise<number> {
    const configured = this.#options.threads;
    if (!this.#options.calibrateThreads || this.backend !== "cpu" || configured <= 1) return configured;
    try {
      const started = performance.now();
      const choice = await this.#threadChoices.choose(path, () =>
        calibrateThreads(model, threadCandidates(configured)),
      );
      if (!choice.cached)
        log.info(
          {
            threads: choice.threads,
            candidates: choice.medians.map((m) => ({
              threads: m.threads,
              tokensPerSecond: Math.round(m.tokensPerSecond),
            })),
            calibrateMs: Math.round(performance.now() - started),
          },
          "threads calibrated",
        );
      return choice.threads;
    } catch (error) {
      if (this.#closing) throw new DisposedError();
      log.warn({ err: error, threads: configured }, "thread calibration failed; using the configured threads");
      return configured;
    }
  }

  #logMark(): number {
    return this.#recentLog.at(-1)?.seq ?? 0;
  }

  /** llama.cpp error lines logged since `mark`. */
  #errorsSince(mark: number): string[] {
    return this.#recentLog
      .filter((line) => line.seq > mark && line.level !== LlamaLogLevel.warn)
      .map((line) => line.message);
  }

  #isOutOfMemory(error: unknown, mark: number): boolean {
    return isOutOfMemory(error) || this.#errorsSince(mark).some((line) => isOutOfMemory(line));
  }

  #explain(error: unknown, mark: number): string {
    const logged = this.#errorsSince(mark);
    return logged.length > 0
      ? `${errorMessage(error)} (llama.cpp: ${logged.slice(-3).join("; ")})`
      : errorMessage(error);
  }

  async #classifyLoadError(
    error: unknown,
    modelId: string,
    path: string,
    mark: number,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    if (signal?.aborted && error === signal.reason) return error;
    if (error instanceof DisposedError) return error;
    await flushLlamaLog();
    if (this.#isOutOfMemory(error, mark)) {
      return new OutOfMemoryError(modelId, "load", this.#explain(error, mark), { cause: error });
    }
    return new ModelFileError(path, `llama.cpp cannot load it: ${this.#explain(error, mark)}`, { cause: error });
  }
}

/**
 * llama.cpp logs the cause of a failure, then returns a bare failure; its log lines reach
 * JS through a thread-safe callback on later event-loop turns, after the rejection.
 */
async function flushLlamaLog(): Promise<void> {
  for (let i = 0; i < 3; i++) await nextMacrotask();
}

async function disposeQuietly(resource: { dispose(): Promise<void> }, log: Logger): Promise<void> {
  try {
    await resource.dispose();
  } catch (error) {
    log.warn({ err: error }, "dispose after a failed load failed");
  }
}
