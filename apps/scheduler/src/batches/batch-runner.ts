import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { BatchProcessor } from "./batch-processor.js";
import type { BatchStore } from "./batch-store.js";

export interface BatchRunnerOptions {
  store: BatchStore;
  processor: BatchProcessor;
  logger: Logger;
  /** How often the active batches are looked at. @defaultValue 500 */
  loopMs?: number;
  /** How long a batch's lease lasts; it is renewed every third of that while work goes on. @defaultValue 30000 */
  leaseMs?: number;
  /** Names this scheduler in lease tokens (logs only). @defaultValue host name and pid */
  holder?: string;
}

/**
 * The batch loop every scheduler replica runs. Every `loopMs` it walks the active
 * batches in Redis; for each one no other scheduler is working on, it takes the batch's
 * lease (SET NX PX), advances it one step (validate, ingest, sweep, finalize), and gives
 * the lease back. The lease is renewed while a long step runs; a scheduler that dies
 * stops renewing, and another one takes the batch over once the lease expires. So with
 * several schedulers each batch is worked on by one at a time, and finalized once.
 */
export class BatchRunner {
  readonly #store: BatchStore;
  readonly #processor: BatchProcessor;
  readonly #logger: Logger;
  readonly #loopMs: number;
  readonly #leaseMs: number;
  readonly #holder: string;
  readonly #running = new Map<string, Promise<void>>();
  readonly #shutdown = new AbortController();
  #timer: NodeJS.Timeout | null = null;
  #tick: Promise<void> | null = null;
  #again = false;
  #closing: Promise<void> | null = null;

  constructor(options: BatchRunnerOptions) {
    this.#store = options.store;
    this.#processor = options.processor;
    this.#logger = options.logger;
    this.#loopMs = options.loopMs ?? 500;
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#holder = options.holder ?? `${hostname()}:${process.pid}`;
    if (this.#loopMs < 1 || this.#leaseMs < 100) throw new RangeError("loopMs must be ≥ 1 and leaseMs ≥ 100");
  }

  /** Starts the loop. */
  start(): void {
    if (this.#closing || this.#timer || this.#tick) return;
    this.#schedule(0);
  }

  /** Looks at the batches now (a batch was just created or cancelled). */
  kick(): void {
    if (this.#closing) return;
    if (this.#tick) {
      this.#again = true;
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#schedule(0);
  }

  /** Batches this scheduler is working on now. */
  get working(): number {
    return this.#running.size;
  }

  /** Stops the loop, interrupts the steps in progress (they save their position) and gives their leases back. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = null;
      this.#shutdown.abort("shutdown");
      await this.#tick;
      await Promise.allSettled([...this.#running.values()]);
    })();
    return this.#closing;
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#tick = this.#lookAtBatches()
        .catch((error: unknown) => this.#logger.warn({ err: error }, "batch loop failed; trying again"))
        .finally(() => {
          this.#tick = null;
          if (this.#closing) return;
          const again = this.#again;
          this.#again = false;
          this.#schedule(again ? 0 : this.#loopMs);
        });
    }, ms);
  }

  async #lookAtBatches(): Promise<void> {
    const ids = await this.#store.activeIds();
    for (const id of ids) {
      if (this.#closing) return;
      if (this.#running.has(id)) continue;
      const token = `${this.#holder}:${randomUUID()}`;
      if (!(await this.#store.acquireLease(id, token, this.#leaseMs))) continue;
      const work = this.#work(id, token).finally(() => this.#running.delete(id));
      this.#running.set(id, work);
    }
  }

  async #work(id: string, token: string): Promise<void> {
    const lease = new AbortController();
    const onShutdown = () => lease.abort("shutdown");
    this.#shutdown.signal.addEventListener("abort", onShutdown, { once: true });
    const renew = setInterval(
      () => {
        this.#store.renewLease(id, token, this.#leaseMs).then(
          (held) => {
            if (!held) lease.abort("lease lost");
          },
          (error: unknown) => this.#logger.warn({ err: error, batch_id: id }, "renewing a batch lease failed"),
        );
      },
      Math.max(50, Math.floor(this.#leaseMs / 3)),
    );
    try {
      await this.#processor.step(id, { token, signal: lease.signal });
    } catch (error) {
      if (lease.signal.aborted)
        this.#logger.info({ batch_id: id, why: String(lease.signal.reason) }, "batch work interrupted");
      else this.#logger.warn({ err: error, batch_id: id }, "batch step failed; it is retried on the next loop");
    } finally {
      clearInterval(renew);
      this.#shutdown.signal.removeEventListener("abort", onShutdown);
      try {
        await this.#store.releaseLease(id, token);
      } catch (error) {
        this.#logger.warn({ err: error, batch_id: id }, "could not release a batch lease; it expires on its own");
      }
    }
  }
}
