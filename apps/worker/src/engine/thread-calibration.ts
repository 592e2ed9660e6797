import { stat } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import type { LlamaModel } from "node-llama-cpp";

/** One timed run of a candidate thread count. */
export interface ThreadSample {
  threads: number;
  /** Decode speed of one sequence, the prompt's evaluation left out. */
  tokensPerSecond: number;
}

export interface ThreadChoice {
  threads: number;
  /** Median tokens/s of each candidate, in the order tried. */
  medians: { threads: number; tokensPerSecond: number }[];
}

/**
 * A candidate within this fraction of the fastest counts as fast as it: the fewest such
 * threads win, leaving the other cores to the rest of the host (and to noise).
 */
export const THREADS_TIE_FRACTION = 0.95;

/**
 * The thread count to keep: the median speed of each candidate, then the fewest threads
 * whose median is within {@link THREADS_TIE_FRACTION} of the best. Pure, for tests.
 */
export function pickThreads(samples: readonly ThreadSample[]): ThreadChoice {
  const byThreads = new Map<number, number[]>();
  for (const sample of samples) {
    const list = byThreads.get(sample.threads) ?? [];
    list.push(sample.tokensPerSecond);
    byThreads.set(sample.threads, list);
  }
  const medians = [...byThreads].map(([threads, speeds]) => ({ threads, tokensPerSecond: median(speeds) }));
  if (medians.length === 0) throw new RangeError("pickThreads needs at least one sample");
  const best = Math.max(...medians.map((m) => m.tokensPerSecond));
  const threads = Math.min(
    ...medians.filter((m) => m.tokensPerSecond >= best * THREADS_TIE_FRACTION).map((m) => m.threads),
  );
  return { threads, medians };
}

/** The thread counts a calibration compares: 1 and the slot's share of the cores. */
export function threadCandidates(threads: number): number[] {
  return threads > 1 ? [1, threads] : [1];
}

export interface CalibrateOptions {
  /** Tokens decoded per timed run (the first, which evaluates the prompt, is not counted). @defaultValue 24 */
  tokens?: number;
  /** A run stops early after this long, so a large model costs at most about budget × runs. @defaultValue 400 */
  budgetMs?: number;
  /** Timed runs per candidate, alternating the order. @defaultValue 3 */
  rounds?: number;
}

const CALIBRATE_DEFAULTS = { tokens: 24, budgetMs: 400, rounds: 3 } as const;
const PROMPT = "Once upon a time";

/**
 * Times greedy decoding of one sequence on a small scratch context at each candidate
 * thread count (alternating, `rounds` runs each) and returns {@link pickThreads}' choice.
 */
export async function calibrateThreads(
  model: LlamaModel,
  candidates: readonly number[],
  options: CalibrateOptions = {},
): Promise<ThreadChoice> {
  const { tokens, budgetMs, rounds } = { ...CALIBRATE_DEFAULTS, ...options };
  if (candidates.length === 1) return { threads: candidates[0]!, medians: [] };
  const prompt = model.tokenize(PROMPT);
  const samples: ThreadSample[] = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? candidates : [...candidates].reverse();
    for (const threads of order) samples.push(await timeDecode(model, prompt, threads, tokens, budgetMs));
  }
  return pickThreads(samples);
}

async function timeDecode(
  model: LlamaModel,
  prompt: ReturnType<LlamaModel["tokenize"]>,
  threads: number,
  tokens: number,
  budgetMs: number,
): Promise<ThreadSample> {
  const context = await model.createContext({ contextSize: 256, sequences: 1, threads, failedCreationRemedy: false });
  try {
    const sequence = context.getSequence();
    let decoded = 0;
    let firstAt = 0;
    let lastAt = 0;
    for await (const token of sequence.evaluate(prompt, { temperature: 0 })) {
      void token;
      lastAt = performance.now();
      if (decoded === 0) firstAt = lastAt;
      decoded++;
      if (decoded > tokens || lastAt - firstAt > budgetMs) break;
    }
    const seconds = (lastAt - firstAt) / 1000;
    return { threads, tokensPerSecond: decoded > 1 && seconds > 0 ? (decoded - 1) / seconds : 0 };
  } finally {
    await context.dispose();
  }
}

/**
 * Calibrations already made in this process, by model file (path, size and mtime): a
 * model loaded again (after a keep-alive unload, or on another slot of the process)
 * keeps its thread count without timing again. A replaced file is calibrated anew.
 */
export class ThreadCalibrationCache {
  readonly #choices = new Map<string, Promise<ThreadChoice>>();

  /** The cached choice for the file, else `calibrate()`'s (a failed calibration is not kept). */
  async choose(path: string, calibrate: () => Promise<ThreadChoice>): Promise<ThreadChoice & { cached: boolean }> {
    const info = await stat(path);
    const key = `${path}\0${info.size}\0${info.mtimeMs}`;
    const existing = this.#choices.get(key);
    if (existing) return { ...(await existing), cached: true };
    const pending = calibrate();
    this.#choices.set(key, pending);
    try {
      return { ...(await pending), cached: false };
    } catch (error) {
      this.#choices.delete(key);
      throw error;
    }
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
