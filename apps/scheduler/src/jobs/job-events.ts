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

/** A job this process created while subscribed, and its final event once seen. */
interface CreatedJob {
  tenant: string;
  at: number;
  /** The subscription's generation when the job was created. */
  generation: number;
  /** Undefined until the final event arrives; then the record's JSON, or null when the event held none. */
  final?: string | null;
}

/**
 * How long (and how many) jobs created here are remembered for {@link JobEvents.known}:
 * long enough for the long poll a client starts right after its submit; a later poll
 * reads the record. Kept small so a submit burst does not grow the heap.
 */
const CREATED_TTL_MS = 10_000;
const CREATED_MAX = 20_000;

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
  /** Bumped whenever the subscription may have missed messages (connection lost). */
  #generation = 0;
  #live = false;
  readonly #created = new Map<string, CreatedJob>();
  /**
   * Ids of jobs whose final event came while they were not noted, and when. A job can be
   * claimed, run and finished between Redis adding it and the submit's code noting it
   * (its reply waits behind the event on a busy event loop): noting such a job as "not
   * final" would make its waiter sleep through the whole wait. Same bounds as `#created`.
   */
  readonly #finalUnnoted = new Map<string, number>();

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

  /**
   * Remembers a job this process just created, while the subscription is live: until it
   * is lost, every final event of that job reaches this process, so {@link known} can
   * answer for it without reading Redis. Also starts the subscription on first use.
   */
  noteCreated(id: string, tenant: string, now = Date.now()): void {
    if (!this.#live) {
      void this.#subscribe().catch(() => undefined);
      return;
    }
    // Its final event came first: this process cannot say "not final"; known() reads Redis.
    if (this.#finalUnnoted.delete(id)) return;
    for (const [oldId, job] of this.#created) {
      if (this.#created.size < CREATED_MAX && now - job.at < CREATED_TTL_MS) break;
      this.#created.delete(oldId);
    }
    this.#created.set(id, { tenant, at: now, generation: this.#generation });
  }

  /**
   * What this process knows of a job it created (see {@link noteCreated}) without asking
   * Redis: `{ final: false }` when no final event came (so it is not final: the event
   * would have), `{ final: true, record }` when one did (record JSON, or null when the
   * event held none), or null when this process cannot tell (read the record).
   */
  known(id: string, tenant: string): { final: false } | { final: true; record: string | null } | null {
    const job = this.#created.get(id);
    if (!job || job.tenant !== tenant || !this.#live || job.generation !== this.#generation) return null;
    return job.final === undefined ? { final: false } : { final: true, record: job.final };
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
    this.#live = false;
    this.#created.clear();
    this.#finalUnnoted.clear();
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

  #rememberFinalUnnoted(id: string, now = Date.now()): void {
    for (const [oldId, at] of this.#finalUnnoted) {
      if (this.#finalUnnoted.size < CREATED_MAX && now - at < CREATED_TTL_MS) break;
      this.#finalUnnoted.delete(oldId);
    }
    this.#finalUnnoted.set(id, now);
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
      const created = this.#created.get(event.id);
      if (created) created.final = event.record;
      else this.#rememberFinalUnnoted(event.id);
      const set = this.#waiters.get(event.id);
      if (set) for (const wake of set) wake("event", event.record);
    });
    // Messages published while the connection is down are lost: what was noted before
    // no longer tells whether a job went final.
    const lost = () => {
      this.#live = false;
      this.#generation += 1;
    };
    subscriber.on("close", lost);
    subscriber.on("ready", () => {
      // ioredis subscribes again on reconnect. Live again once a SUBSCRIBE of our own is
      // answered: commands run in order, so the re-subscription is in effect by then.
      if (this.#live || this.#subscriber !== subscriber) return;
      subscriber.subscribe(channel).then(
        () => {
          if (this.#subscriber === subscriber) this.#live = true;
        },
        () => undefined,
      );
    });
    const subscribed = subscriber.subscribe(channel).then(
      () => {
        this.#live = true;
      },
      (error: unknown) => {
        lost();
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
