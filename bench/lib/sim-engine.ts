/**
 * The cluster simulator's engine stand-in: implements the worker's engine port
 * (`ModelEngine` / `ModelHandle`) without llama.cpp. A job "generates" `max_tokens`
 * tokens at a fixed token rate: it sleeps that long, emits its first token after one
 * token's time and the rest at the end (two chunks: the token stream's Redis writes stay
 * those of a short real job), and records when it was claimed and finished. It lives in
 * bench/ and is passed to `Slot.start` by the simulator alone; nothing in the product's
 * configuration can select it.
 */
import type { JobPayload } from "@corral/shared";
import type { MemoryProbe, MemoryReading, ModelEngine, ModelHandle, RunOutput } from "@corral/worker";

/** One job run as a simulated slot saw it (ms since the epoch, the clock job records use). */
export interface SimJobEvent {
  id: string;
  slot: string;
  /** The scheduler took the job (`created_at` of its payload). */
  createdAt: number;
  /** The engine was handed the job: the slot had claimed it. */
  startedAt: number;
  /** Generation ended (the slot then completes the job in Redis). */
  endedAt: number;
  /** Whether the run ended normally (not aborted). */
  ok: boolean;
}

export interface SimEngineOptions {
  /** This slot's id, copied into its events. */
  slot: string;
  /** Tokens per second per job. */
  tokensPerSecond: number;
  /** How long a model load takes, ms. */
  loadMs: number;
  /** Where each finished run goes. */
  onEvent: (event: SimJobEvent) => void;
}

/** An engine that sleeps through jobs at a set token rate. */
export class SimEngine implements ModelEngine {
  readonly #o: SimEngineOptions;
  #loaded = 0;
  #closed = false;

  constructor(options: SimEngineOptions) {
    if (!(options.tokensPerSecond > 0)) throw new Error("tokensPerSecond must be positive");
    this.#o = options;
  }

  /** Models loaded and not yet disposed (the memory probe charges each). */
  get loadedModels(): number {
    return this.#loaded;
  }

  async load(): Promise<ModelHandle> {
    if (this.#closed) throw new Error("the simulated engine is closed");
    const started = performance.now();
    if (this.#o.loadMs > 0) await sleep(this.#o.loadMs);
    this.#loaded += 1;
    let disposed = false;
    const o = this.#o;
    return {
      loadMs: performance.now() - started,
      run: (job, run) => runJob(o, job, run),
      dispose: async () => {
        if (disposed) return;
        disposed = true;
        this.#loaded -= 1;
      },
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}

async function runJob(
  o: SimEngineOptions,
  job: JobPayload,
  run: { signal: AbortSignal; onText: (text: string) => void },
): Promise<RunOutput> {
  const startedAt = Date.now();
  const t0 = performance.now();
  const tokenMs = 1000 / o.tokensPerSecond;
  const tokens = job.max_tokens;
  let ok = false;
  try {
    await sleep(tokenMs, run.signal);
    run.onText("a");
    const ttft = performance.now() - t0;
    if (tokens > 1) {
      await sleep(tokenMs * (tokens - 1), run.signal);
      run.onText(" b".repeat(tokens - 1));
    }
    ok = true;
    return {
      text: `a${" b".repeat(Math.max(0, tokens - 1))}`,
      finish_reason: "length",
      usage: { prompt_tokens: 8, completion_tokens: tokens },
      ttft_ms: ttft,
      generation_ms: performance.now() - t0,
    };
  } finally {
    o.onEvent({ id: job.id, slot: o.slot, createdAt: job.created_at, startedAt, endedAt: Date.now(), ok });
  }
}

/**
 * A device with room for `fits` models of `modelBytes`: free memory is the total less
 * what the engine holds loaded, as a real probe would read it after a load.
 */
export class SimMemoryProbe implements MemoryProbe {
  readonly #engine: SimEngine;
  readonly #totalBytes: number;
  readonly #modelBytes: number;

  constructor(options: { engine: SimEngine; modelBytes: number; fits: number }) {
    this.#engine = options.engine;
    this.#modelBytes = options.modelBytes;
    // Half a model more than `fits`: room for `fits`, never for one more.
    this.#totalBytes = Math.ceil(options.modelBytes * (options.fits + 0.5));
  }

  async read(): Promise<MemoryReading> {
    const used = this.#engine.loadedModels * this.#modelBytes;
    return { freeBytes: Math.max(0, this.#totalBytes - used), totalBytes: this.#totalBytes, at: Date.now() };
  }

  reserveBytes(): number {
    return 0;
  }

  gpus(): [] {
    return [];
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function abortError(signal: AbortSignal): Error {
  const error = new Error(`aborted: ${String(signal.reason)}`);
  error.name = "AbortError";
  return error;
}
