interface Waiter<T> {
  resolve(item: T): void;
  reject(error: unknown): void;
  cleanup(): void;
}

/**
 * A fixed set of items (context sequences) handed out one job at a time. `acquire` takes
 * a free item or waits in FIFO order; an aborted wait leaves the queue and rejects with
 * the signal's reason. `close` rejects every waiter and refuses new ones. Every acquired
 * item must be released exactly once.
 *
 * `acquire` can be given a preference: of the free items it takes the one scored highest
 * (the sequence already holding the longest part of the job's prompt), the longest-free
 * among equals. A waiter takes whichever item is released first: the preference never
 * makes a job wait.
 */
export class SequencePool<T> {
  readonly #free: T[];
  readonly #waiters: Waiter<T>[] = [];
  readonly #total: number;
  #closedWith: (() => unknown) | null = null;
  #handedOut = 0;

  constructor(items: readonly T[]) {
    if (items.length === 0) throw new RangeError("a sequence pool needs at least one item");
    this.#free = [...items];
    this.#total = items.length;
  }

  get size(): number {
    return this.#total;
  }

  /** Items handed out and not yet released (or retired). */
  get busy(): number {
    return this.#handedOut;
  }

  /** Acquirers waiting for an item. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /**
   * @param prefer - scores a free item; the highest score is taken, the first free on a tie
   * (all free items when omitted tie).
   */
  acquire(signal?: AbortSignal, prefer?: (item: T) => number): Promise<T> {
    if (this.#closedWith) return Promise.reject(this.#closedWith());
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#free.length > 0) {
      const [item] = this.#free.splice(prefer ? this.#preferred(prefer) : 0, 1);
      this.#handedOut++;
      return Promise.resolve(item!);
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.#waiters.indexOf(waiter);
        if (index >= 0) this.#waiters.splice(index, 1);
        reject(signal?.reason);
      };
      const waiter: Waiter<T> = {
        resolve: (item) => {
          this.#handedOut++;
          resolve(item);
        },
        reject,
        cleanup: () => signal?.removeEventListener("abort", onAbort),
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Index in the free list of the item `prefer` scores highest, the earliest on a tie. */
  #preferred(prefer: (item: T) => number): number {
    let best = 0;
    let bestScore = -Infinity;
    this.#free.forEach((item, index) => {
      const score = prefer(item);
      if (score > bestScore) {
        best = index;
        bestScore = score;
      }
    });
    return best;
  }

  /** Gives an item back: to the first waiter, else to the free list. */
  release(item: T): void {
    this.#handedOut = Math.max(0, this.#handedOut - 1);
    if (this.#closedWith) return;
    const waiter = this.#waiters.shift();
    if (waiter) {
      waiter.cleanup();
      waiter.resolve(item);
    } else {
      this.#free.push(item);
    }
  }

  /** Rejects all waiters with `makeError()` and every later `acquire`. Idempotent. */
  close(makeError: () => unknown): void {
    if (this.#closedWith) return;
    this.#closedWith = makeError;
    this.#free.length = 0;
    for (const waiter of this.#waiters.splice(0)) {
      waiter.cleanup();
      waiter.reject(makeError());
    }
  }
}
