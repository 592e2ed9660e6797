import type { Logger } from "pino";
import { ConflictError, NotFoundError, isFinalStatus, type JobRecord } from "@corral/shared";
import type { JobService } from "../../jobs/job-service.js";
import type { JobInput } from "../../jobs/types.js";

/** How waiting for a group's jobs ended. */
export type GroupWait =
  | { outcome: "final"; records: JobRecord[] }
  /** The deadline passed first. */
  | { outcome: "timeout" }
  /** The signal aborted (the client went away). */
  | { outcome: "aborted" }
  /** The job service stopped waiting (the scheduler is shutting down). */
  | { outcome: "interrupted" };

/** setTimeout's ceiling; longer waits are done in steps. */
const MAX_WAIT_STEP_MS = 2 ** 31 - 1;
/** A wait that ends this close to the deadline ended because of it. */
const TIMER_SLACK_MS = 20;

/**
 * The jobs of one OpenAI request (one per choice), submitted, waited on and cancelled
 * together. Cancelling goes through {@link JobService.cancel}, the path of
 * `DELETE /v1/jobs/:id`: a queued job leaves its lane, a running one is aborted on its
 * worker (which frees the sequence at once).
 */
export class JobGroup {
  readonly #jobs: JobService;
  readonly #tenant: string;
  readonly #log: Logger;
  readonly #records: JobRecord[] = [];
  readonly #settled = new Set<string>();
  #cancelling: Promise<void> | null = null;

  constructor(jobs: JobService, tenant: string, logger: Logger) {
    this.#jobs = jobs;
    this.#tenant = tenant;
    this.#log = logger;
  }

  /** The submitted jobs' records as submitted, in choice order. */
  get records(): readonly JobRecord[] {
    return this.#records;
  }

  get ids(): string[] {
    return this.#records.map((record) => record.id);
  }

  /**
   * Submits one job per input, in order (source `openai`). When one submit fails (e.g.
   * 429, the tenant's queue is full) the jobs already submitted are cancelled and the
   * error is thrown. A group cancelled meanwhile stops submitting.
   */
  async submit(inputs: readonly JobInput[]): Promise<JobRecord[]> {
    for (const input of inputs) {
      if (this.#cancelling) break;
      try {
        this.#records.push(await this.#jobs.submit(this.#tenant, input, { source: "openai" }));
      } catch (error) {
        await this.cancel("a later job of the request could not be submitted");
        throw error;
      }
    }
    // A cancel that came while the last submit was in flight missed that job.
    if (this.#cancelling) await this.#cancelEach("cancelled while submitting");
    return [...this.#records];
  }

  /** Marks a job as known to be final (no cancel is sent for it). */
  settled(id: string): void {
    this.#settled.add(id);
  }

  /**
   * Cancels every job not known to be final; never throws (failures are logged).
   * Repeated calls share the first one's work.
   */
  cancel(why: string): Promise<void> {
    this.#cancelling ??= this.#cancelEach(why);
    return this.#cancelling;
  }

  /** Whether {@link cancel} was called. */
  get cancelled(): boolean {
    return this.#cancelling !== null;
  }

  /**
   * Waits until every job is final, `deadline` (ms since epoch; Infinity for none) passes,
   * or `signal` aborts. `onFinal` sees each job's final record as it comes.
   */
  async waitAll(
    deadline: number,
    signal: AbortSignal,
    clock: () => number = Date.now,
    onFinal: (record: JobRecord) => void = () => {},
  ): Promise<GroupWait> {
    const results = await Promise.all(
      this.#records.map(async (record) => {
        for (;;) {
          const left = deadline - clock();
          if (left <= 0) return null;
          const current = await this.#jobs.waitForFinal(
            this.#tenant,
            record.id,
            Math.min(left, MAX_WAIT_STEP_MS),
            signal,
          );
          if (isFinalStatus(current.status)) {
            this.#settled.add(current.id);
            onFinal(current);
            return current;
          }
          if (signal.aborted) return null;
          // Not final and not aborted: the step's time ran out, or waits were interrupted.
          if (deadline - clock() <= TIMER_SLACK_MS) return null;
          if (left <= MAX_WAIT_STEP_MS) return "interrupted" as const;
        }
      }),
    );
    if (signal.aborted) return { outcome: "aborted" };
    if (results.some((r) => r === "interrupted")) return { outcome: "interrupted" };
    if (results.some((r) => r === null)) return { outcome: "timeout" };
    return { outcome: "final", records: results as JobRecord[] };
  }

  async #cancelEach(why: string): Promise<void> {
    await Promise.all(
      this.#records.map(async ({ id }) => {
        if (this.#settled.has(id)) return;
        try {
          await this.#jobs.cancel(this.#tenant, id);
          this.#log.info({ job_id: id, why }, "cancelled the job of an OpenAI request");
        } catch (error) {
          // Already final (409) or gone (404): nothing to free.
          if (error instanceof ConflictError || error instanceof NotFoundError) return;
          this.#log.warn({ err: error, job_id: id, why }, "could not cancel the job of an OpenAI request");
        } finally {
          this.#settled.add(id);
        }
      }),
    );
  }
}
