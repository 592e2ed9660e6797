import { performance } from "node:perf_hooks";
import { JobLimitError } from "./errors.js";

/** The limits every job's generation runs under. */
export interface JobLimits {
  /** Most milliseconds a job may generate, from when it holds a sequence; 0: no limit. */
  timeoutMs: number;
  /** Slowest completion tokens per second allowed, counted from the first token; 0: no limit. */
  minTokensPerSecond: number;
  /** How long after its first token a job runs before its rate is checked, ms. */
  rateGraceMs: number;
}

/** How often the token rate is checked at most, ms. */
const RATE_CHECK_MS = 1000;

/**
 * Watches one generation against its {@link JobLimits}: `signal` aborts (with the outer
 * signal, a cancel or a drain) when the job runs past its wall time or its token rate
 * falls below the slowest allowed once the grace after the first token has passed;
 * `exceeded` then says which, as the JobLimitError to fail the job with. `stop()` when
 * the generation is over.
 */
export class LimitWatch {
  readonly signal: AbortSignal;
  readonly #limits: JobLimits;
  readonly #controller = new AbortController();
  readonly #started = performance.now();
  readonly #timers: NodeJS.Timeout[] = [];
  #firstTokenAt: number | null = null;
  #tokens = 0;
  #exceeded: JobLimitError | null = null;

  constructor(limits: JobLimits, outer?: AbortSignal) {
    this.#limits = limits;
    this.signal = outer ? AbortSignal.any([outer, this.#controller.signal]) : this.#controller.signal;
    if (limits.timeoutMs > 0) {
      const timer = setTimeout(() => this.#overWallTime(), limits.timeoutMs);
      timer.unref();
      this.#timers.push(timer);
    }
    if (limits.minTokensPerSecond > 0) {
      const every = Math.max(10, Math.min(RATE_CHECK_MS, Math.floor(limits.rateGraceMs / 4)));
      const timer = setInterval(() => this.#checkRate(), every);
      timer.unref();
      this.#timers.push(timer);
    }
  }

  /** The limit the job went over, or null. */
  get exceeded(): JobLimitError | null {
    return this.#exceeded;
  }

  /** Counts tokens the job generated. */
  noteTokens(count: number): void {
    this.#firstTokenAt ??= performance.now();
    this.#tokens += count;
  }

  /** Stops the timers. Idempotent. */
  stop(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.length = 0;
  }

  #overWallTime(): void {
    const elapsed = performance.now() - this.#started;
    this.#stopWith(
      new JobLimitError(
        "wall-time",
        `The job ran longer than this worker's limit of ${seconds(this.#limits.timeoutMs)} per job (CORRAL_JOB_TIMEOUT_MS) and was stopped after ${this.#tokens} tokens.`,
        elapsed,
        this.#tokens,
      ),
    );
  }

  #checkRate(): void {
    if (this.#firstTokenAt === null || this.#exceeded) return;
    const since = performance.now() - this.#firstTokenAt;
    if (since < this.#limits.rateGraceMs) return;
    const rate = this.#tokens / (since / 1000);
    if (rate >= this.#limits.minTokensPerSecond) return;
    this.#stopWith(
      new JobLimitError(
        "token-rate",
        `The job generated ${rate.toFixed(2)} tokens/s, slower than this worker's slowest allowed rate of ${this.#limits.minTokensPerSecond} tokens/s (CORRAL_JOB_MIN_TOKENS_PER_SECOND), and was stopped after ${this.#tokens} tokens. A response_format schema with many alternatives makes each token slow.`,
        performance.now() - this.#started,
        this.#tokens,
      ),
    );
  }

  #stopWith(error: JobLimitError): void {
    if (this.#exceeded) return;
    this.#exceeded = error;
    this.stop();
    this.#controller.abort(error);
  }
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
