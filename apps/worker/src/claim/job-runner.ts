import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { UnrecoverableError } from "bullmq";
import {
  JobPayload,
  JobTransitions,
  jobErrorCodeOf,
  type JobRecords,
  type JobRef,
  type JobResult,
  type RedisKeys,
  type Usage,
} from "@corral/shared";
import { JobAudio } from "./job-audio.js";
import type { LaneJob } from "./lane-workers.js";
import type { HeldLock, LockKeeper } from "./lock-keeper.js";
import { TokenStreamWriter } from "./token-stream-writer.js";
import type { TenantGate } from "./tenant-gate.js";
import type { UsageMeter } from "./usage-meter.js";
import type { ClaimMetrics, FailureKind, ModelHandle, RunOutput, SlotIdentity } from "./types.js";

/** Why the slot aborted a running job. `lock-lost`: another slot may run it now; write nothing. */
export type AbortReason = "cancelled" | "drain" | "lock-lost";

/** A job this slot has claimed, from claim to finish. */
export interface ActiveJob {
  job: LaneJob;
  token: string;
  lane: string;
  model: string;
  controller: AbortController;
  claimedAt: number;
  /**
   * Called once the engine is done with the job (generation returned or threw), before
   * its result is written. `succeeded`: the generation returned and the job was not
   * aborted. Returns true when the job's sequence stays with it to take the lane's next
   * job in the same call that completes this one (BullMQ's fetch-next, one round trip and
   * no drained check); the runner then hands what came back to `onNext`. False: the
   * sequence is free for the next claim at once, while this job's result is written.
   */
  onGenerated?: (succeeded: boolean) => boolean;
  /**
   * After a fetch-next completion, with what `moveToCompleted` returned (the next job's
   * data, locked with the same token; undefined when the call failed). Called once.
   */
  onNext?: (completion: unknown) => void;
}

export interface JobRunnerOptions {
  redis: Redis;
  keys: RedisKeys;
  records: JobRecords;
  slot: SlotIdentity;
  metrics: ClaimMetrics;
  classify: (error: unknown) => FailureKind;
  /** Renews each running job's lock, and its tenant place, with the slot's other jobs. */
  locks: LockKeeper;
  tokenStreamTtlSeconds: number;
  /** Charges each job's tenant the time its generation held a sequence (fair share). */
  usage?: UsageMeter;
  /** Holds jobs with a `max_active` to their tenant's limit (parks the others). */
  gate?: TenantGate;
  logger: Logger;
  now: () => number;
}

const NO_USAGE: Usage = { prompt_tokens: 0, completion_tokens: 0 };
/** What a finally failed BullMQ job keeps as its data: nothing of the request. */
const FAILED_PAYLOAD = {} as const;

/**
 * Runs one claimed job to a final state, keeping the job record and BullMQ in step:
 * the record first, then BullMQ, so that when a job ran twice (a slot died mid-job and
 * its lock expired) the first final record wins and exactly one result is kept.
 *
 * Outcomes:
 * - success → record succeeded with the result, stream end entry, `moveToCompleted`;
 * - cancelled (record already final before start, or a cancel arrived) → the job is
 *   dropped from BullMQ as completed; a running one keeps its partial text;
 * - out of memory while loading, or the slot draining → released to its lane with
 *   `moveToWait`, no attempt spent, record back to queued;
 * - unrecoverable (model file, prompt too long, bad schema) → record failed,
 *   `moveToFailed` with BullMQ's `UnrecoverableError` (no retry);
 * - anything else → `moveToFailed`; BullMQ retries while attempts remain, and the record
 *   goes back to queued with the error until the last attempt fails it.
 */
export class JobRunner {
  readonly #o: JobRunnerOptions;
  /** Every record change goes through the job state machine. */
  readonly #moves: JobTransitions;
  readonly #audio: JobAudio;

  constructor(options: JobRunnerOptions) {
    this.#o = options;
    this.#moves = new JobTransitions(options.records);
    this.#audio = new JobAudio(options.redis);
  }

  /**
   * Runs `active` once the model is ready. `ready` resolves to the model's handle and
   * how long this job waited for the load (0 when it was loaded already).
   */
  async run(active: ActiveJob, ready: () => Promise<{ handle: ModelHandle; loadMs: number }>): Promise<void> {
    const log = this.#o.logger.child({ job: active.job.id, model: active.model });
    const lock = this.#o.locks.hold({
      id: active.job.id!,
      lane: active.lane,
      token: active.token,
      log,
      onLost: () => active.controller.abort("lock-lost"),
    });
    const place = new Place(log, lock);
    try {
      await this.#run(active, ready, log, place);
    } catch (error) {
      // Only Redis trouble reaches here; BullMQ's stalled check brings the job back.
      log.error({ err: error }, "could not finish the job; it returns through stalled-job recovery");
    } finally {
      lock.release();
      await place.leave();
    }
  }

  async #run(
    active: ActiveJob,
    ready: () => Promise<{ handle: ModelHandle; loadMs: number }>,
    log: Logger,
    place: Place,
  ): Promise<void> {
    const { job, token } = active;
    const o = this.#o;
    const parsed = JobPayload.safeParse(job.data);
    if (!parsed.success) {
      const message = `job ${job.id} has an invalid payload: ${parsed.error.issues[0]?.message ?? "unknown"}`;
      // The batch is unknown here (no payload): a batch line costs one more round trip.
      await this.#moves.fail({ id: job.id! }, o.now(), { message, code: "invalid_payload" });
      await this.#failFinally(log, job, new UnrecoverableError(message), token);
      return;
    }
    const payload = parsed.data;

    if (job.deferredFailure || attemptsUsed(job) >= Math.max(1, job.opts.attempts ?? 1)) {
      // Its runs were interrupted (the slot died, or hung past its lock) until no attempt
      // was left: each recovery counted one (the supervisor's in attemptsMade, BullMQ's
      // stalled check in stalledCounter). Or BullMQ's own stall limit (deferredFailure).
      const reason = job.deferredFailure ?? `no attempts left after ${attemptsUsed(job)} interrupted or failed runs`;
      const message = `The job was interrupted too often (the worker running it died or hung each time); not retried (${reason}).`;
      await this.#moves.fail({ id: payload.id }, o.now(), { message, code: "job_stalled" });
      o.metrics.jobsCompleted.inc({ model: payload.model, status: "failed" });
      await this.#failFinally(log, job, new UnrecoverableError(reason), token);
      await this.#audio.drop(payload, log);
      log.warn({ reason }, "failed a job that stalled too often");
      return;
    }

    if (payload.max_active !== undefined && o.gate) {
      if (!(await place.enter(o.gate, payload.tenant, payload.id, payload.max_active))) {
        await this.#park(active, payload, log);
        return;
      }
    }

    const startedAt = o.now();
    const running = await this.#moves.start(
      { id: payload.id },
      {
        startedAt,
        worker: o.slot.id,
        gpu: o.slot.gpuIndex === null ? null : String(o.slot.gpuIndex),
        attempts: job.attemptsMade + 1,
      },
    );
    if (running === null) {
      // Cancelled (or finished elsewhere) while it waited, or its record expired: drop it.
      const record = await o.records.get(payload.id);
      log.info({ status: record?.status ?? "missing" }, "dropping a job whose record is not waiting to run");
      await this.#bull(log, "complete", () => job.moveToCompleted({ dropped: true }, token, false));
      // Its audio goes with a job that ended (or whose record expired), not with one running elsewhere.
      if (record === null || record.status !== "running") await this.#audio.drop(payload, log);
      return;
    }
    const queueMs = Math.max(0, startedAt - running.created_at);
    o.metrics.tenantWait.observe({ tenant: payload.tenant }, queueMs / 1000);
    // The record names the job's batch (a batch line), which its final move needs.
    const ref: JobRef = { id: payload.id, batch_id: running.batch_id };

    let audio: Uint8Array | undefined;
    try {
      audio = await this.#audio.read(payload);
    } catch (error) {
      await this.#failed(active, payload, ref, error, log, "", NO_USAGE);
      return;
    }

    let loaded: { handle: ModelHandle; loadMs: number } | null;
    const waitStart = o.now();
    try {
      // A cancel or the drain deadline does not wait for a slow load to finish.
      loaded = await untilAborted(ready(), active.controller.signal);
    } catch (error) {
      await this.#failed(active, payload, ref, error, log, "", NO_USAGE);
      return;
    }
    if (loaded === null || active.controller.signal.aborted) {
      const loadMs = loaded?.loadMs ?? o.now() - waitStart;
      await this.#aborted(
        active,
        payload,
        ref,
        { text: "", usage: NO_USAGE, queueMs, loadMs, ttftMs: null, genMs: 0 },
        log,
      );
      return;
    }
    const { handle, loadMs } = loaded;

    let text = "";
    const writer = payload.stream
      ? new TokenStreamWriter({
          redis: o.redis,
          key: o.keys.tokens(payload.id),
          ttlSeconds: o.tokenStreamTtlSeconds,
          logger: log,
        })
      : null;
    const generationStart = o.now();
    let output: RunOutput;
    try {
      output = await handle.run(payload, {
        signal: active.controller.signal,
        onText: (chunk, logprobs) => {
          text += chunk;
          writer?.push(chunk, logprobs);
        },
        onReasoning: (chunk) => writer?.pushReasoning(chunk),
        ...(audio === undefined ? {} : { audio }),
      });
    } catch (error) {
      await place.leave();
      active.onGenerated?.(false);
      if (active.controller.signal.aborted) {
        const genMs = o.now() - generationStart;
        await this.#aborted(
          active,
          payload,
          ref,
          { text, usage: NO_USAGE, queueMs, loadMs, ttftMs: null, genMs },
          log,
          writer,
        );
        return;
      }
      await this.#failed(active, payload, ref, error, log, text, NO_USAGE, writer);
      return;
    }
    o.usage?.countTokens(payload.tenant, output.usage.prompt_tokens + output.usage.completion_tokens);
    if (output.reused_prompt_tokens)
      o.metrics.promptTokensReused.inc({ model: payload.model }, output.reused_prompt_tokens);
    // The tenant's place is free before the completion call may take the lane's next job.
    await place.leave();
    const fetchNext = active.onGenerated?.(!active.controller.signal.aborted) ?? false;
    if (active.controller.signal.aborted) {
      const run = {
        text: output.text,
        usage: output.usage,
        queueMs,
        loadMs,
        ttftMs: output.ttft_ms,
        genMs: output.generation_ms,
        ...(output.reasoning !== undefined ? { reasoning: output.reasoning } : {}),
      };
      await this.#aborted(active, payload, ref, run, log, writer);
      return;
    }

    this.#settle(payload, output.usage);
    const result: JobResult = {
      text: output.text,
      finish_reason: output.finish_reason,
      usage: output.usage,
      timings: { queue_ms: queueMs, load_ms: loadMs, ttft_ms: output.ttft_ms, generation_ms: output.generation_ms },
      ...(output.embeddings ? { embeddings: output.embeddings } : {}),
      ...(output.logprobs ? { logprobs: output.logprobs } : {}),
      ...(output.reasoning !== undefined ? { reasoning: output.reasoning } : {}),
      ...(output.tool_calls ? { tool_calls: output.tool_calls } : {}),
      ...(output.transcription ? { transcription: output.transcription } : {}),
    };
    // The text first, so whoever sees the final record finds all of it in the stream.
    await writer?.flush();
    const finishedAt = o.now();
    // The final record goes out now; without a stream, BullMQ's completion follows it at
    // once, before its reply (see #complete).
    const recording = this.#moves.succeed(ref, finishedAt, result);
    let completing: Promise<void> | null = null;
    if (writer) {
      // The stream's end entry after the final record, and the completion after both.
      await this.#recorded(recording, log);
      await writer.end({ finish_reason: result.finish_reason, usage: result.usage, status: "succeeded" });
    } else {
      completing = this.#complete(active, result, fetchNext, log);
      try {
        await this.#recorded(recording, log);
      } catch (error) {
        // The completion went out behind the record's move: whatever it did stands (a
        // job it fetched runs), and the record was not written (Redis refused the script).
        await completing;
        log.error({ err: error }, "could not record the job's result; BullMQ completed the job regardless");
        return;
      }
    }
    this.#observe(payload, "succeeded", result, finishedAt - running.created_at);
    await (completing ?? this.#complete(active, result, fetchNext, log));
    await this.#audio.drop(payload, log);
    log.debug({ usage: result.usage, finish_reason: result.finish_reason }, "job succeeded");
  }

  /** Waits for a succeeded job's final record move; logs when the record was final already. */
  async #recorded(recording: Promise<unknown>, log: Logger): Promise<void> {
    if ((await recording) === null) log.info("the job's record was already final; keeping the first result");
  }

  /**
   * Completes a succeeded job in BullMQ, taking the lane's next job in the same call when
   * `fetchNext` (handed to `onNext`, also when the call failed). Called right after the
   * job's final record move was sent, without waiting for its reply: both commands go out
   * on the slot's one connection, the record's first, and Redis runs them in that order, so
   * a job is never completed before its record is final, and the sequence that waits for
   * the next job waits one round trip instead of two. (Either both are refused or neither:
   * a connection lost, a Redis out of memory or read-only refuses the two alike.)
   */
  async #complete(active: ActiveJob, result: JobResult, fetchNext: boolean, log: Logger): Promise<void> {
    const { job, token } = active;
    if (!fetchNext) {
      await this.#bull(log, "complete", () => job.moveToCompleted(result, token, false));
      return;
    }
    let completion: unknown;
    try {
      await this.#bull(log, "complete", async () => {
        completion = await job.moveToCompleted(result, token, true);
      });
    } finally {
      active.onNext?.(completion);
    }
  }

  /** The run was aborted: a cancel (record cancelled with the partial text) or a drain (released). */
  async #aborted(
    active: ActiveJob,
    payload: JobPayload,
    ref: JobRef,
    run: {
      text: string;
      usage: Usage;
      queueMs: number;
      loadMs: number;
      ttftMs: number | null;
      genMs: number;
      /** A reasoning model's partial thoughts, when the engine returned them. */
      reasoning?: string;
    },
    log: Logger,
    writer: TokenStreamWriter | null = null,
  ): Promise<void> {
    const o = this.#o;
    const reason = abortReason(active.controller.signal);
    if (reason === "lock-lost") {
      // Another slot may run the job now: this run writes no record, stream end or BullMQ state.
      log.warn({ partial_chars: run.text.length }, "aborted the job: its lock was lost");
      return;
    }
    if (reason === "drain") {
      await this.release(active, log, "the slot is shutting down");
      return;
    }
    this.#settle(payload, run.usage);
    const result: JobResult = {
      text: run.text,
      finish_reason: "cancelled",
      usage: run.usage,
      timings: { queue_ms: run.queueMs, load_ms: run.loadMs, ttft_ms: run.ttftMs, generation_ms: run.genMs },
      ...(run.reasoning !== undefined ? { reasoning: run.reasoning } : {}),
    };
    await writer?.flush();
    const finishedAt = o.now();
    const record = await this.#moves.cancel(ref, finishedAt, result);
    if (record === null) {
      // The scheduler marked it cancelled first: add the partial text it could not know.
      const current = await o.records.get(payload.id);
      if (current?.status === "cancelled" && current.result === null) await this.#moves.addCancelledResult(ref, result);
    }
    this.#observe(payload, "cancelled", result, null);
    await writer?.end({ finish_reason: "cancelled", usage: result.usage, status: "cancelled" });
    await this.#bull(log, "complete", () => active.job.moveToCompleted(result, active.token, false));
    await this.#audio.drop(payload, log);
    log.info({ completion_tokens: result.usage.completion_tokens }, "job cancelled while running");
  }

  /**
   * Fair claim charged the job's estimate when it released it: a job that finished or was
   * cancelled settles it with the tokens it used. A failed one keeps the estimate (its
   * retries are not charged again), and a released one (drain, lost lock) settles when it
   * ends for good.
   */
  #settle(payload: JobPayload, usage: Usage): void {
    // Audio jobs are charged their audio's token-equivalent (`fair_cost`) exactly: nothing to settle.
    if (payload.fair_cost === undefined || payload.audio !== undefined) return;
    this.#o.usage?.settle(payload.tenant, usage.prompt_tokens + usage.completion_tokens - payload.fair_cost);
  }

  /** Puts the job back in its lane without spending an attempt; its record goes back to queued. */
  async release(active: ActiveJob, log: Logger, why: string): Promise<void> {
    const o = this.#o;
    const { job } = active;
    await this.#moves.requeue({ id: job.id! }, job.attemptsMade);
    // The rerun streams from the start; drop what this run wrote.
    await o.redis.del(o.keys.tokens(job.id!));
    await this.#bull(log, "release", () => job.moveToWait(active.token));
    log.info({ why }, "released the job to its lane");
  }

  async #failed(
    active: ActiveJob,
    payload: JobPayload,
    ref: JobRef,
    error: unknown,
    log: Logger,
    text: string,
    usage: Usage,
    writer: TokenStreamWriter | null = null,
  ): Promise<void> {
    const o = this.#o;
    const { job, token } = active;
    const kind = o.classify(error);
    if (kind === "out-of-memory") {
      o.metrics.oomReleases.inc({ model: payload.model });
      await this.release(active, log, "out of memory while loading the model");
      return;
    }
    if (kind === "release") {
      await this.release(active, log, "its model was unloaded");
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    const code = jobErrorCodeOf(error);
    const attempts = job.opts.attempts ?? 1;
    const retry = kind === "retryable" && attemptsUsed(job) + 1 < attempts;
    if (retry) await this.#moves.retry(ref, { message, code });
    else await this.#moves.fail(ref, o.now(), { message, code });
    o.metrics.jobsCompleted.inc({ model: payload.model, status: retry ? "retried" : "failed" });
    if (!retry) await writer?.end({ finish_reason: "stop", usage, status: "failed" });
    // No retry left by Corral's count (stalls included): BullMQ, which counts attemptsMade only, must not retry either.
    const reason = retry ? asError(error) : new UnrecoverableError(message);
    if (retry) await this.#bull(log, "fail", () => job.moveToFailed(reason, token, false));
    else {
      await this.#failFinally(log, job, reason, token);
      await this.#audio.drop(payload, log);
    }
    log.warn({ err: error, retry, kind, partial_chars: text.length }, "job failed");
  }

  #observe(
    { model, tenant }: JobPayload,
    status: "succeeded" | "cancelled",
    result: JobResult,
    totalMs: number | null,
  ): void {
    const m = this.#o.metrics;
    m.jobsCompleted.inc({ model, status });
    m.tokensGenerated.inc({ model }, result.usage.completion_tokens);
    m.promptTokens.inc({ model }, result.usage.prompt_tokens);
    m.tenantServiceTokens.inc({ tenant }, result.usage.prompt_tokens + result.usage.completion_tokens);
    if (status !== "succeeded") return;
    const audioSeconds = result.usage.audio_seconds;
    if (audioSeconds !== undefined) {
      m.audioSeconds.inc({ model }, audioSeconds);
      const wallSeconds = result.timings.generation_ms / 1000;
      if (wallSeconds > 0) m.realTimeFactor.observe({ model }, audioSeconds / wallSeconds);
    }
    if (result.timings.ttft_ms !== null) m.timeToFirstToken.observe({ model }, result.timings.ttft_ms / 1000);
    m.jobDuration.observe({ model, phase: "queue" }, result.timings.queue_ms / 1000);
    m.jobDuration.observe({ model, phase: "load" }, result.timings.load_ms / 1000);
    m.jobDuration.observe({ model, phase: "generate" }, result.timings.generation_ms / 1000);
    if (totalMs !== null) m.jobDuration.observe({ model, phase: "total" }, totalMs / 1000);
  }

  /**
   * The job's tenant runs its `max_active` jobs already: the job goes to BullMQ's delayed
   * set (no attempt spent; its record stays queued) and waits there to be promoted when a
   * place frees, or until its delay ends.
   */
  async #park(active: ActiveJob, payload: JobPayload, log: Logger): Promise<void> {
    const gate = this.#o.gate!;
    try {
      await active.job.moveToDelayed(gate.parkedUntil(), active.token);
    } catch (error) {
      log.warn({ err: error }, "could not park the job (lock lost?); it returns through stalled-job recovery");
      return;
    }
    await gate.park(payload.tenant, active.lane, payload.id, payload.max_active!);
    this.#o.metrics.jobsParked.inc({ model: payload.model });
    log.debug(
      { tenant: payload.tenant, max_active: payload.max_active },
      "parked: the tenant runs its most jobs at once",
    );
  }

  /**
   * Fails the job in BullMQ for good. The record holds the error clients read; BullMQ keeps
   * the failed job (its reason, for bull-board and the failed count) but not its payload: a
   * failed job's prompt would otherwise sit in Redis for the whole failed-job retention
   * (a tenant's burst of 1 MB prompts failing at once grew Redis by their full size). The
   * payload goes first: if the move then fails (lock lost), the job that stalled-job
   * recovery brings back has no payload and is dropped, its record being final already.
   */
  async #failFinally(log: Logger, job: LaneJob, reason: Error, token: string): Promise<void> {
    await this.#bull(log, "drop the payload of", () => job.updateData(FAILED_PAYLOAD as unknown as LaneJob["data"]));
    await this.#bull(log, "fail", () => job.moveToFailed(reason, token, false));
  }

  /** A BullMQ state change that may fail when the lock was lost; logged, never thrown. */
  async #bull(log: Logger, what: string, call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (error) {
      log.warn({ err: error, what }, "BullMQ refused the state change (lock lost?); the job record stands");
    }
  }
}

/** The promise's value, or null as soon as `signal` aborts (the promise's later rejection is ignored). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | null> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.resolve(null);
  }
  return new Promise<T | null>((resolve, reject) => {
    const onAbort = () => resolve(null);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) resolve(null);
        else reject(error);
      },
    );
  });
}

export function abortReason(signal: AbortSignal): AbortReason {
  return signal.reason === "drain" || signal.reason === "lock-lost" ? signal.reason : "cancelled";
}

/**
 * The attempts a job used: its failed runs and the interrupted ones the supervisor put
 * back (both in attemptsMade), plus the runs BullMQ's stalled check put back
 * (stalledCounter). `CORRAL_JOB_ATTEMPTS` (the job's `attempts`) bounds their sum.
 */
function attemptsUsed(job: LaneJob): number {
  return job.attemptsMade + job.stalledCounter;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** A job's place among its tenant's running jobs (`max_active`), held from enter to leave. */
class Place {
  readonly #log: Logger;
  readonly #lock: HeldLock;
  #held: { gate: TenantGate; tenant: string; id: string; max: number } | null = null;

  constructor(log: Logger, lock: HeldLock) {
    this.#log = log;
    this.#lock = lock;
  }

  /** Takes a place, renewed with the job's lock; false when the tenant's places are all taken. */
  async enter(gate: TenantGate, tenant: string, id: string, max: number): Promise<boolean> {
    if (!(await gate.enter(tenant, id, max))) return false;
    this.#held = { gate, tenant, id, max };
    this.#lock.holdPlace(tenant, id);
    return true;
  }

  /** Frees the place (once) and promotes the tenant's parked jobs into it. Never rejects. */
  async leave(): Promise<void> {
    const held = this.#held;
    if (!held) return;
    this.#held = null;
    this.#lock.dropPlace();
    try {
      await held.gate.leave(held.tenant, held.id, held.max);
    } catch (error) {
      // The place expires with its lease; a slot's sweep then promotes the parked jobs.
      this.#log.warn({ err: error }, "could not free the job's tenant place; it expires with its lease");
    }
  }
}
