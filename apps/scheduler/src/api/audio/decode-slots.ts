/**
 * At most `max` audio decodes at once in this process. A decode holds the whole file as
 * 16 kHz float32 samples (64 KB a second of audio: 230 MB for an hour), so uploads that
 * arrive together wait their turn rather than add up.
 */
export class DecodeSlots {
  readonly max: number;
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`max must be a positive integer (got ${max})`);
    this.max = max;
  }

  /** Runs `task` once a slot is free. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running >= this.max) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#running++;
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      // The slot passes straight to the next waiter; otherwise it is freed.
      if (next) next();
      else this.#running--;
    }
  }
}
