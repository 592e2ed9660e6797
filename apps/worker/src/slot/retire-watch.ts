export interface RetireWatchOptions {
  /**
   * A group slot formed on demand: it retires once it has run no job this long (from its
   * start or its last job). @defaultValue null (never retires when idle)
   */
  retireWhenIdleMs?: number | null;
  /** When the slot started, ms. */
  startedAt: number;
}

/**
 * When a slot process exits on its own for dynamic groups, as a pure function of what it
 * is told and what it runs (the caller samples it, e.g. every 250 ms):
 * - a slot whose GPU joins a group was asked to retire (`retire()`): it goes at its next
 *   idle moment, the first sample with no job running;
 * - a group slot formed on demand goes once it has run no job for `retireWhenIdleMs`.
 * `check` answers why the slot goes now, or null while it stays.
 */
export class RetireWatch {
  readonly #idleLimitMs: number | null;
  #retireRequested = false;
  #lastBusyAt: number;

  constructor(options: RetireWatchOptions) {
    this.#idleLimitMs = options.retireWhenIdleMs ?? null;
    this.#lastBusyAt = options.startedAt;
  }

  /** Whether anything is to be watched: a retire was asked for, or the slot retires when idle. */
  get watching(): boolean {
    return this.#retireRequested || this.#idleLimitMs !== null;
  }

  /** The supervisor asked this slot to leave its GPU to a group. */
  retire(): void {
    this.#retireRequested = true;
  }

  check(activeJobs: number, now: number): string | null {
    if (activeJobs > 0) {
      this.#lastBusyAt = now;
      return null;
    }
    if (this.#retireRequested) return "its GPU joins a group";
    if (this.#idleLimitMs !== null && now - this.#lastBusyAt >= this.#idleLimitMs)
      return `the group ran no job for ${this.#idleLimitMs} ms`;
    return null;
  }
}
