import cliProgress from "cli-progress";
import type { BatchObject } from "@corral/shared";
import type { CliIo } from "../output/io.js";

/** Requests per second over a sliding window of (time, finished) samples. */
export class RateMeter {
  readonly #windowMs: number;
  readonly #samples: { at: number; done: number }[] = [];

  constructor(windowMs = 30_000) {
    this.#windowMs = windowMs;
  }

  add(at: number, done: number): void {
    this.#samples.push({ at, done });
    while (this.#samples.length > 2 && this.#samples[0]!.at < at - this.#windowMs) this.#samples.shift();
  }

  /** Finished requests per second, or null before two samples a little apart. */
  get perSecond(): number | null {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (!first || !last || last.at - first.at < 500) return null;
    return Math.max(0, (last.done - first.done) / ((last.at - first.at) / 1000));
  }
}

/** Seconds → "45s", "3m20s", "2h05m". */
export function formatEta(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** What a progress line says about a batch. */
export interface ProgressFigures {
  done: number;
  total: number;
  failed: number;
  rate: number | null;
  eta: number | null;
}

export function progressFigures(batch: BatchObject, rate: number | null): ProgressFigures {
  const { total, completed, failed } = batch.request_counts;
  const done = completed + failed;
  const eta = rate && rate > 0 ? (total - done) / rate : done >= total && total > 0 ? 0 : null;
  return { done, total, failed, rate, eta };
}

/** One plain progress line: `batch_… in_progress: 45/200 done (22%), 2 failed, 12.3 req/s, ETA 13s`. */
export function formatProgressLine(batch: BatchObject, f: ProgressFigures): string {
  const percent = f.total > 0 ? ` (${Math.floor((100 * f.done) / f.total)}%)` : "";
  const rate = f.rate === null ? "- req/s" : `${f.rate.toFixed(1)} req/s`;
  return `${batch.id} ${batch.status}: ${f.done}/${f.total} done${percent}, ${f.failed} failed, ${rate}, ETA ${formatEta(f.eta)}`;
}

export interface BatchProgressOptions {
  io: CliIo;
  /** A live bar on stderr (a terminal); otherwise plain lines every `intervalMs` and on each status change. */
  tty: boolean;
  /** @defaultValue 5000 */
  intervalMs?: number;
  /** @defaultValue Date.now */
  clock?: () => number;
}

/** Shows a batch's progress while `corral batch wait` polls it. */
export class BatchProgress {
  readonly #io: CliIo;
  readonly #intervalMs: number;
  readonly #clock: () => number;
  readonly #meter = new RateMeter();
  readonly #bar: cliProgress.SingleBar | null;
  #started = false;
  #lastPrinted = -Infinity;
  #lastStatus: string | null = null;

  constructor(options: BatchProgressOptions) {
    this.#io = options.io;
    this.#intervalMs = options.intervalMs ?? 5000;
    this.#clock = options.clock ?? Date.now;
    this.#bar = options.tty
      ? new cliProgress.SingleBar(
          {
            format:
              "{bar} {percentage}% | {value}/{total} done | {failed} failed | {rate} req/s | ETA {eta_text} | {status}",
            stream: process.stderr,
            hideCursor: true,
            etaBuffer: 50,
          },
          cliProgress.Presets.shades_classic,
        )
      : null;
  }

  update(batch: BatchObject): void {
    const now = this.#clock();
    const { completed, failed } = batch.request_counts;
    this.#meter.add(now, completed + failed);
    const figures = progressFigures(batch, this.#meter.perSecond);
    if (this.#bar) {
      const payload = {
        failed: figures.failed,
        rate: figures.rate === null ? "-" : figures.rate.toFixed(1),
        eta_text: formatEta(figures.eta),
        status: batch.status,
      };
      if (!this.#started) {
        this.#bar.start(Math.max(figures.total, 1), figures.done, payload);
        this.#started = true;
      } else {
        if (figures.total > 0) this.#bar.setTotal(figures.total);
        this.#bar.update(figures.done, payload);
      }
      return;
    }
    if (batch.status !== this.#lastStatus || now - this.#lastPrinted >= this.#intervalMs) {
      this.#io.err(formatProgressLine(batch, figures));
      this.#lastPrinted = now;
      this.#lastStatus = batch.status;
    }
  }

  stop(): void {
    if (this.#bar && this.#started) this.#bar.stop();
    this.#started = false;
  }
}
