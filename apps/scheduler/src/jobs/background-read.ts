import type { Logger } from "pino";

export interface BackgroundReadOptions<T> {
  /** Reads the value (from Redis); `now` is the clock when the read started. */
  read: (now: number) => Promise<T>;
  /** The value until the first read succeeds. */
  initial: T;
  /** How long a read value is used before it is read again. */
  refreshMs: number;
  /** Besides age, what else makes the last read stale (say, a new day). @defaultValue nothing */
  staleAfter?: (readAt: number, now: number) => boolean;
  logger: Logger;
  /** Logged at warn when a read fails (the last value is kept). */
  failure: string;
  clock: () => number;
}

/**
 * A value read from Redis at most every `refreshMs`, for use on hot paths: callers take
 * the last value at once and start a read in the background when it is stale, so a
 * request never waits on it. Concurrent refreshes share one read; a failed read keeps
 * the last value and is logged.
 */
export class BackgroundRead<T> {
  readonly #o: BackgroundReadOptions<T>;
  #value: T;
  #readAt = Number.NEGATIVE_INFINITY;
  #reading: Promise<void> | null = null;

  constructor(options: BackgroundReadOptions<T>) {
    this.#o = options;
    this.#value = options.initial;
  }

  /** The value as last read. */
  get value(): T {
    return this.#value;
  }

  /** The value as last read; starts a read in the background when it is stale. */
  peek(): T {
    if (this.stale()) void this.refresh();
    return this.#value;
  }

  /** The value, read again first when it is stale. */
  async current(): Promise<T> {
    if (this.stale()) await this.refresh();
    return this.#value;
  }

  /** Whether the last read is older than `refreshMs` (or `staleAfter` says so). */
  stale(now = this.#o.clock()): boolean {
    return now - this.#readAt >= this.#o.refreshMs || (this.#o.staleAfter?.(this.#readAt, now) ?? false);
  }

  /** Reads now (joining a read in progress). Never rejects. */
  refresh(): Promise<void> {
    this.#reading ??= (async () => {
      const now = this.#o.clock();
      this.#readAt = now;
      try {
        this.#value = await this.#o.read(now);
      } catch (error) {
        this.#o.logger.warn({ err: error }, this.#o.failure);
      } finally {
        this.#reading = null;
      }
    })();
    return this.#reading;
  }
}
