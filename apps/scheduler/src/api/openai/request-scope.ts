import type { Response } from "express";
import type { Logger } from "pino";
import { RequestTimeoutError, ServiceUnavailableError, type JobRecord } from "@corral/shared";
import type { JobService } from "../../jobs/job-service.js";
import { JobGroup } from "./job-group.js";
import { jobOutcomeError } from "../../openai-format/job-outcome.js";
import type { JobKind } from "../../openai-format/job-error-responses.js";

export type { JobKind };

/**
 * The lifetime of one OpenAI request: its jobs, its deadline, and whether the client is
 * still there. When the client disconnects before the response finished (streaming or
 * not), every job of the request is cancelled, as `DELETE /v1/jobs/:id` would.
 */
export class RequestScope {
  readonly group: JobGroup;
  readonly kind: JobKind;
  /** Ms since epoch; Infinity when requests have no time limit. */
  readonly deadline: number;
  readonly timeoutMs: number;
  readonly log: Logger;
  readonly clock: () => number;
  readonly #gone = new AbortController();

  constructor(options: {
    res: Response;
    jobs: JobService;
    tenant: string;
    kind: JobKind;
    timeoutMs: number;
    clock: () => number;
    log: Logger;
  }) {
    const { res } = options;
    this.kind = options.kind;
    this.log = options.log;
    this.clock = options.clock;
    this.timeoutMs = options.timeoutMs;
    this.deadline = options.timeoutMs > 0 ? options.clock() + options.timeoutMs : Infinity;
    this.group = new JobGroup(options.jobs, options.tenant, options.log);
    const onClose = () => {
      if (res.writableFinished || this.#gone.signal.aborted) return;
      this.#gone.abort();
      // The handler awaits the same promise once it notices; this starts it at once.
      this.group.cancel("the client disconnected").catch(() => {});
    };
    res.on("close", onClose);
    // A client that left while the body was read or the request checked: nothing gets queued.
    if (res.req.socket.destroyed) onClose();
  }

  /** Aborts when the client disconnects before the response finished. */
  get gone(): AbortSignal {
    return this.#gone.signal;
  }

  /** Cancels the jobs and returns the 504 to answer with. */
  async timedOut(): Promise<RequestTimeoutError> {
    await this.group.cancel("the request timed out");
    return new RequestTimeoutError(
      `The request did not finish within ${this.timeoutMs} ms (CORRAL_REQUEST_TIMEOUT_MS); its jobs were cancelled.`,
    );
  }

  /**
   * Waits until every job is final and returns their records in choice order, or null
   * when the client went away (the jobs are cancelled then).
   * @throws RequestTimeoutError (504) after the deadline, ServiceUnavailableError (503)
   *   when the scheduler shuts down meanwhile, or the error of the first job that did not
   *   succeed (see {@link jobOutcomeError}); the other jobs are cancelled in each case.
   */
  async succeededRecords(): Promise<JobRecord[] | null> {
    // One job that did not succeed fails the request: withdraw the others at once.
    const wait = await this.group.waitAll(this.deadline, this.gone, this.clock, (record) => {
      if (record.status !== "succeeded")
        this.group.cancel("another job of the request did not succeed").catch(() => {});
    });
    switch (wait.outcome) {
      case "aborted":
        await this.group.cancel("the client disconnected");
        return null;
      case "timeout":
        throw await this.timedOut();
      case "interrupted":
        await this.group.cancel("the scheduler is shutting down");
        throw new ServiceUnavailableError(
          "The scheduler is shutting down; the request's jobs were cancelled. Retry the request.",
        );
      case "final": {
        // The job that failed first in choice order, not one cancelled because of it.
        const bad =
          wait.records.find((r) => r.status === "failed") ??
          wait.records.find((r) => r.status !== "succeeded" || r.result === null);
        if (bad) {
          await this.group.cancel("another job of the request did not succeed");
          throw jobOutcomeError(bad, this.kind);
        }
        return wait.records;
      }
    }
  }
}
