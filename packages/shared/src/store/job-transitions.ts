import type { JobError, JobRecord, JobResult, JobStatus } from "../schemas/job-record.js";
import type { JobRecords } from "./job-records.js";

/**
 * The job state machine: every change of a job record's status, by name, each with the
 * statuses it may start from. Nothing else moves a record (`JobRecords.transition` is
 * called from here only). Each move is one atomic script (`transitionJob-3.lua`): it
 * applies when the record's status is one of the move's `from`, and returns null
 * otherwise (or when the record is gone), so the first final state wins and a job that
 * ran twice keeps exactly one result.
 *
 * ```mermaid
 * stateDiagram-v2
 *   [*] --> queued: submit (admitAndCreateJob, admitJobs)
 *   queued --> running: start
 *   running --> running: start (a rerun after its slot died)
 *   queued --> queued: retry
 *   running --> queued: retry, requeue
 *   queued --> succeeded: succeed
 *   running --> succeeded: succeed
 *   queued --> failed: fail, failEnqueue, failQueued
 *   running --> failed: fail
 *   queued --> cancelled: cancel, cancelQueued
 *   running --> cancelled: cancel
 *   cancelled --> cancelled: addCancelledResult
 *   succeeded --> [*]
 *   failed --> [*]
 *   cancelled --> [*]
 * ```
 *
 * - `start`, `succeed`, `fail`, `retry` and `cancel` are the worker's, and accept
 *   `queued` as well as `running`: a job whose slot died is claimed again while its
 *   record still says `running`, and a rerun may finish before the record was seen running.
 * - `retry` puts a failed attempt back (attempts remain); `requeue` releases a running job
 *   without spending an attempt (out of memory, a draining slot, an unloaded model).
 * - `cancelQueued` (the scheduler's cancel of a waiting job), `failEnqueue` (a submit
 *   whose BullMQ add failed) and `failQueued` (a waiting job the scheduler gives up on,
 *   e.g. its model left the catalog) apply to `queued` only: once a worker started the job, the
 *   worker decides.
 * - `addCancelledResult` adds a running job's partial result to a record the scheduler
 *   cancelled first.
 * - Parking (a tenant at its `max_active`) is no move: the job goes to BullMQ's delayed
 *   set and its record stays `queued`.
 *
 * A final move of a batch line also records the line in its batch while the batch is open
 * (see `transitionJob-3.lua`). Pass the record's `batch_id` in the {@link JobRef} when it
 * is known (from the payload's record, or one read before); without it, a batch line costs
 * one more round trip.
 */
export const JOB_TRANSITIONS = {
  start: { from: ["queued", "running"], to: "running" },
  succeed: { from: ["queued", "running"], to: "succeeded" },
  fail: { from: ["queued", "running"], to: "failed" },
  retry: { from: ["queued", "running"], to: "queued" },
  requeue: { from: ["running"], to: "queued" },
  cancel: { from: ["queued", "running"], to: "cancelled" },
  cancelQueued: { from: ["queued"], to: "cancelled" },
  failEnqueue: { from: ["queued"], to: "failed" },
  failQueued: { from: ["queued"], to: "failed" },
  /** `to: null`: the status stays; a patch of a final record keeps its expiry and publishes nothing. */
  addCancelledResult: { from: ["cancelled"], to: null },
} as const satisfies Record<string, { from: readonly JobStatus[]; to: JobStatus | null }>;

export type JobTransitionName = keyof typeof JOB_TRANSITIONS;

/** A job to move: its id, and its batch when known (a record or `{ id }`). */
export interface JobRef {
  id: string;
  batch_id?: string | undefined;
}

/** What a worker records when it starts a job. */
export interface JobStart {
  startedAt: number;
  worker: string;
  gpu: string | null;
  /** Attempts including this one. */
  attempts: number;
}

/** The named moves of job records; see {@link JOB_TRANSITIONS}. */
export class JobTransitions {
  readonly #records: JobRecords;

  constructor(records: JobRecords) {
    this.#records = records;
  }

  /** A worker starts the job. */
  start(job: JobRef, run: JobStart): Promise<JobRecord | null> {
    return this.#move("start", job, {
      started_at: run.startedAt,
      worker: run.worker,
      gpu: run.gpu,
      attempts: run.attempts,
    });
  }

  /** The job produced its result. */
  succeed(job: JobRef, finishedAt: number, result: JobResult): Promise<JobRecord | null> {
    return this.#move("succeed", job, { finished_at: finishedAt, result, error: null });
  }

  /** The job failed for good (no attempt left, or unrecoverable). */
  fail(job: JobRef, finishedAt: number, error: JobError): Promise<JobRecord | null> {
    return this.#move("fail", job, { finished_at: finishedAt, error });
  }

  /** An attempt failed and BullMQ retries the job: back to queued, with the error. */
  retry(job: JobRef, error: JobError): Promise<JobRecord | null> {
    return this.#move("retry", job, { error, worker: null, gpu: null, started_at: null });
  }

  /** A running job goes back to its lane without spending an attempt (`attempts`: those made before this run). */
  requeue(job: JobRef, attempts: number): Promise<JobRecord | null> {
    return this.#move("requeue", job, { started_at: null, worker: null, gpu: null, attempts });
  }

  /** The worker aborted the job on a cancel; `result` holds the partial text. */
  cancel(job: JobRef, finishedAt: number, result: JobResult): Promise<JobRecord | null> {
    return this.#move("cancel", job, { finished_at: finishedAt, result });
  }

  /** The scheduler cancels a job that is still waiting. */
  cancelQueued(job: JobRef, finishedAt: number): Promise<JobRecord | null> {
    return this.#move("cancelQueued", job, { finished_at: finishedAt, result: null, error: null });
  }

  /** A submit whose BullMQ add failed: the job never reached its lane. */
  failEnqueue(job: JobRef, finishedAt: number): Promise<JobRecord | null> {
    return this.#move("failEnqueue", job, {
      finished_at: finishedAt,
      error: { message: "The job could not be added to its queue.", code: "enqueue_failed" },
    });
  }

  /** The scheduler fails a job that is still waiting (its model left the catalog): `error` says why. */
  failQueued(job: JobRef, finishedAt: number, error: JobError): Promise<JobRecord | null> {
    return this.#move("failQueued", job, { finished_at: finishedAt, result: null, error });
  }

  /** Adds a running job's partial result to a record that was cancelled (by the scheduler) before it. */
  addCancelledResult(job: JobRef, result: JobResult): Promise<JobRecord | null> {
    return this.#move("addCancelledResult", job, { result });
  }

  #move(name: JobTransitionName, job: JobRef, patch: Partial<JobRecord>): Promise<JobRecord | null> {
    const { from, to } = JOB_TRANSITIONS[name] as { from: readonly JobStatus[]; to: JobStatus | null };
    return this.#records.transition(job.id, from, to === null ? patch : { status: to, ...patch }, job.batch_id ?? null);
  }
}
