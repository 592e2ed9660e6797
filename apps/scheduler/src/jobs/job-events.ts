import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { parseJobEvent } from "@corral/shared";

export interface JobEventsOptions {
  /** Creates the dedicated subscriber connection, on first use (this class owns and closes it). */
  createSubscriber: () => Redis;
  /** Channel on which a job id (and its record, when small) is published when the record reaches a final state. */
  channel: string;
  logger: Logger;
}

/** How a wait ended. */
export type WaitOutcome = "event" | "ready" | "timeout" | "aborted" | "closed";

/**
 * Wakes waiters when a job's record goes final. One subscriber connection per process,
 * subscribed once, fans messages out to waiters by job id.
 */
export class JobEvents {
  readonly #options: JobEventsOptions;
  readonly #waiters = new Map<string, Set<(outcome: WaitOutcome, record?: string | null) => void>>();
  #subscriber: Redis | null = null;
  #subscribed: Promise<void> | null = null;
  #closed = false;

  constructor(options: JobEventsOptions) {
    this.#options = options;
  }

  /**
   * Waits until `id` is published, `timeoutMs` passes, `signal` aborts or the process
   * closes. `check` runs after the subscription is live (so no event can slip between
   * it and the wait); when it returns true the wait ends at once with "ready". An "event"
   * outcome carries the final record's JSON when the message held it (null otherwise).
   */
  async waitFor(
    id: string,
    timeoutMs: number,
    check: () => Promise<boolean>,
    signal?: AbortSignal,
  ): Promise<WaitOutcome> {
    return (await this.waitForEvent(id, timeoutMs, check, signal)).outcome;
  }

  /** As {@link waitFor}, with the published record's JSON (when an event ended the wait and held one). */
  async waitForEvent(
    id: string,
    timeoutMs: number,
    check: () => Promise<boolean>,
    signal?: AbortSignal,
  ): Promise<{ outcome: WaitOutcome; record: string | null }> {
    if (this.#closed) return { outcome: "closed", record: null };
    if (signal?.aborted) return { outcome: "aborted", record: null };
    let wake!: (outcome: WaitOutcome, record?: string | null) => void;
    const woken = new Promise<{ outcome: WaitOutcome; record: string | null }>(
      (resolve) => (wake = (outcome, record = null) => resolve({ outcome, record })),
    );
    let set = this.#waiters.get(id);
    if (!set) this.#waiters.set(id, (set = new Set()));
    set.add(wake);
    const timer = setTimeout(() => wake("timeout"), timeoutMs);
    const onAbort = () => wake("aborted");
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await this.#subscribe();
      if (await check()) return { outcome: "ready", record: null };
      return await woken;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      set.delete(wake);
      if (set.size === 0 && this.#waiters.get(id) === set) this.#waiters.delete(id);
    }
  }

  /** Number of waits in progress (for tests and shutdown logs). */
  get waiting(): number {
    let n = 0;
    for (const set of this.#waiters.values()) n += set.size;
    return n;
  }

  /** Ends every wait with "closed", now. Further waits end at once. */
  interrupt(): void {
    this.#closed = true;
    for (const set of this.#waiters.values()) for (const wake of set) wake("closed");
  }

  /** Interrupts the waits and closes the subscriber connection. Idempotent. */
  async close(): Promise<void> {
    this.interrupt();
    const subscriber = this.#subscriber;
    this.#subscriber = null;
    if (!subscriber) return;
    try {
      await Promise.race([subscriber.quit(), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
    } catch {
      // already gone
    } finally {
      subscriber.disconnect();
    }
  }

  #subscribe(): Promise<void> {
    if (this.#subscribed) return this.#subscribed;
    const { channel, logger } = this.#options;
    const subscriber = this.#options.createSubscriber();
    this.#subscriber = subscriber;
    subscriber.on("error", (error: Error) => logger.warn({ err: error }, "job events subscriber error"));
    subscriber.on("message", (from: string, message: string) => {
      if (from !== channel) return;
      const event = parseJobEvent(message);
      const set = this.#waiters.get(event.id);
      if (set) for (const wake of set) wake("event", event.record);
    });
    const subscribed = subscriber.subscribe(channel).then(
      () => undefined,
      (error: unknown) => {
        // Let the next wait try again with a fresh connection.
        if (this.#subscribed === subscribed) this.#subscribed = null;
        if (this.#subscriber === subscriber) this.#subscriber = null;
        subscriber.disconnect();
        throw error;
      },
    );
    this.#subscribed = subscribed;
    return subscribed;
  }
}
