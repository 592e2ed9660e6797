import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { z } from "zod";
import type { BulkJobOptions, JobsOptions } from "bullmq";
import {
  ConflictError,
  CorralError,
  DEFAULT_CLIENT_PRIORITY,
  FairQueue,
  HOLD_DELAY_MS,
  InvalidRequestError,
  JobPayload,
  JobRecord,
  JobRecords,
  JobStatus,
  JobTransitions,
  ModelNotFoundError,
  NotFoundError,
  QueueFullError,
  ValidationError,
  bullPriority,
  duplicateRedis,
  estimateCost,
  isFinalStatus,
  laneName,
  queuedJobRecord,
  tenantSetting,
  validateJsonSchemaForGrammar,
  type CatalogModel,
  type HeldJob,
  type JobSource,
  type RedisKeys,
} from "@corral/shared";
import type { ModelCatalogView } from "../catalog/types.js";
import type { PromptLengthGuard } from "../prompt-length/prompt-length-guard.js";
import type { TokenBudget } from "./token-budget.js";
import { JobEvents } from "./job-events.js";
import { assertJobId, newJobId } from "./job-id.js";
import { LaneQueues } from "./lane-queues.js";
import { TenantQueueCap } from "./tenant-queue-cap.js";
import type { ReplicaWait } from "./replica-wait.js";
import { WriteBatcher } from "./write-batcher.js";
import { AudioStore, DEFAULT_AUDIO_TTL_MS } from "./audio-store.js";
import type {
  BulkJob,
  BulkSubmitResult,
  JobInput,
  JobPage,
  JobServiceOptions,
  ListOptions,
  SubmitOptions,
} from "./types.js";

/** Tokens a second of audio costs in fair claim: Whisper's encoder reads 50 frames a second. */
export const AUDIO_TOKENS_PER_SECOND = 50;
/** `max_tokens` when the caller gives none (capped at the model's context). */
export const DEFAULT_MAX_TOKENS = 256;
/** How long BullMQ keeps finished jobs; the job record is what clients read. */
const REMOVE_ON_COMPLETE = { age: 3600, count: 10_000 } as const;
/** Failed jobs keep their reason but no payload (the worker drops it), at most 10,000 per lane. */
const REMOVE_ON_FAIL = { age: 86_400, count: 10_000 } as const;
/** How long a tenant found full is admitted before its job is added (not alongside). */
const FULL_RECHECK_MS = 1000;
/** How often a lane is re-added to the lanes set by a process that keeps submitting to it. */
const LANE_REGISTER_MS = 60_000;

const ListQuery = z.object({
  status: JobStatus.optional(),
  limit: z.number().int().min(1).max(100).default(20),
  after: z.string().optional(),
});

/**
 * The core of job handling, shared by the native, OpenAI and batch endpoints: submit a
 * job to its model's lane, read, list, cancel, and wait for a final state. Every method
 * that takes a tenant sees only that tenant's jobs; another tenant's job is "not found".
 */
export class JobService {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #catalog: ModelCatalogView;
  readonly #logger: Logger;
  readonly #records: JobRecords;
  readonly #moves: JobTransitions;
  readonly #lanes: LaneQueues;
  readonly #ownsLanes: boolean;
  readonly #events: JobEvents;
  readonly #cap: TenantQueueCap;
  readonly #attempts: number;
  readonly #backoffMs: number;
  readonly #fair: FairQueue;
  readonly #shares: ReadonlyMap<string, number>;
  readonly #tokenBudget: TokenBudget | null;
  readonly #promptLength: PromptLengthGuard | null;
  readonly #maxActive: ReadonlyMap<string, number>;
  readonly #onSubmitted: (record: JobRecord, audioSeconds: number) => void;
  readonly #replicaWait: ReplicaWait | null;
  readonly #clock: () => number;
  /** Tenants found full, until when their submits admit first and add after. */
  readonly #fullUntil = new Map<string, number>();
  readonly #writes: WriteBatcher;
  readonly #audio: AudioStore;
  /** When this process last added each lane to the lanes set. */
  readonly #laneRegisteredAt = new Map<string, number>();
  #closing: Promise<void> | null = null;

  constructor(options: JobServiceOptions) {
    const attempts = options.attempts ?? 3;
    if (!Number.isInteger(attempts) || attempts < 1) throw new RangeError("attempts must be a positive integer");
    this.#redis = options.redis;
    this.#keys = options.keys;
    this.#catalog = options.catalog;
    this.#logger = options.logger;
    this.#records = new JobRecords(options.redis, options.keys);
    this.#moves = new JobTransitions(this.#records);
    this.#ownsLanes = options.lanes === undefined;
    this.#lanes =
      options.lanes ?? new LaneQueues({ connection: options.redis, keys: options.keys, logger: options.logger });
    this.#events = new JobEvents({
      createSubscriber:
        options.createSubscriber ?? (() => duplicateRedis(options.redis, { commandTimeout: undefined })),
      channel: options.keys.jobEventsChannel,
      logger: options.logger,
    });
    this.#cap = new TenantQueueCap({
      redis: options.redis,
      keys: options.keys,
      max: options.maxQueuedPerTenant ?? 10_000,
      maxBytes: options.maxQueuedBytesPerTenant ?? 0,
    });
    this.#attempts = attempts;
    this.#fair = new FairQueue(options.redis, options.keys, { creditTokens: options.fairCreditTokens });
    this.#shares = options.shares ?? new Map();
    this.#tokenBudget = options.tokenBudget ?? null;
    this.#promptLength = options.promptLength ?? null;
    this.#maxActive = options.maxActive ?? new Map();
    this.#backoffMs = options.backoffMs ?? 1000;
    this.#onSubmitted = options.onSubmitted ?? (() => {});
    this.#replicaWait = options.replicaWait ?? null;
    this.#clock = options.clock ?? Date.now;
    this.#writes = new WriteBatcher(options.redis);
    this.#audio = new AudioStore({
      redis: options.redis,
      keys: options.keys,
      ttlMs: options.audioTtlMs ?? DEFAULT_AUDIO_TTL_MS,
      ...(options.audioBudget ? { budget: options.audioBudget } : {}),
      logger: options.logger,
    });
  }

  /**
   * Checks that the tenant may start new work: throws TokenBudgetExceededError (429) when
   * it has used its tokens for today. Batches check once, when they are created; their
   * lines are admitted work and are not checked again.
   */
  admit(tenant: string): void {
    this.#tokenBudget?.admit(tenant);
  }

  /** The job records store this service writes through (reads; record changes go through {@link JobTransitions}). */
  get records(): JobRecords {
    return this.#records;
  }

  /**
   * Queues a job on its model's lane and returns its record (status `queued`).
   * @throws ModelNotFoundError (404) when the catalog has no such model, listing those it has.
   * @throws InvalidRequestError (400) when `max_tokens` exceeds the model's context, the prompt
   *   does not fit it (with a {@link PromptLengthGuard}), or the input is unusable.
   * @throws QueueFullError (429) when the tenant already has its maximum of queued jobs.
   * @throws TokenBudgetExceededError (429) when the tenant has used its tokens for today.
   */
  submit(tenant: string, input: JobInput, options: SubmitOptions): Promise<JobRecord> {
    return this.#submit(tenant, input, options, false);
  }

  /** {@link submit}; `pruned`: the tenant's queued set was pruned for this submit already. */
  async #submit(tenant: string, input: JobInput, options: SubmitOptions, pruned: boolean): Promise<JobRecord> {
    this.admit(tenant);
    const model = this.resolveModel(input.model);
    const now = this.#clock();
    const id = newJobId();
    const payload = this.#payload(id, tenant, model, input, options, now);
    if (!input.audio) {
      payload.fair_cost = costOf(payload, await this.#promptLength?.check(model, payload, maxTokensGiven(input)));
      return this.#queue(tenant, input, options, pruned, model, payload, now, {
        queued: false,
        resubmit: () => this.#submit(tenant, input, options, true),
      });
    }
    // Audio: counted against the tenant's day and stored before the job exists (its worker
    // reads it); both undone when the job is not queued, or before it is resubmitted under
    // another id (after pruning), which stores its own.
    payload.fair_cost = audioCost(input.audio.seconds);
    const undo = once(await this.#audio.put(tenant, id, input.audio));
    const attempt: QueueAttempt = {
      queued: false,
      resubmit: async () => {
        await undo();
        return this.#submit(tenant, input, options, true);
      },
    };
    try {
      return await this.#queue(tenant, input, options, pruned, model, payload, now, attempt);
    } catch (error) {
      // Queued, then an error (replicas did not confirm): the job runs, its audio stays.
      if (!attempt.queued)
        await undo().catch((undoError: unknown) =>
          this.#logger.warn({ err: undoError, job_id: id }, "could not remove the audio of a job that was not queued"),
        );
      throw error;
    }
  }

  /** Queues a job whose payload is built (the rest of {@link submit}). */
  async #queue(
    tenant: string,
    input: JobInput,
    options: SubmitOptions,
    pruned: boolean,
    model: CatalogModel,
    payload: JobPayload,
    now: number,
    attempt: QueueAttempt,
  ): Promise<JobRecord> {
    const id = payload.id;
    const priority = options.priority ?? input.priority ?? DEFAULT_CLIENT_PRIORITY;
    const record = queuedJobRecord({
      id,
      tenant,
      model: model.id,
      source: options.source,
      priority,
      created_at: now,
      metadata: input.metadata,
    });

    // The admission script (cap, record, index, lane registry) and the BullMQ add go out
    // together, in that order on one connection, so Redis runs them in that order and a
    // worker never sees the job before its record (it drops a job whose record it cannot
    // find). When admission then says no, the job just added is taken back out. A tenant
    // found full lately is admitted first and added after, so clients retrying against a
    // full queue do not add and remove a job each time.
    const lane = laneName(model.id);
    const optimistic = !pruned && !this.#recentlyFull(tenant, now);
    this.#writes.hold();
    const bytes = this.#bytesOf(record, payload);
    const admission = this.#cap.admit(record, this.#laneToRegister(lane, now), bytes);
    const added = optimistic ? this.#add(lane, payload) : null;
    let admitted: Awaited<typeof admission>;
    try {
      admitted = await admission;
    } catch (error) {
      this.#laneRegisteredAt.delete(lane);
      // Redis trouble: the add may still be waiting for the connection, so do not wait for
      // it; if it ever lands, it is taken back (and a worker drops it anyway: no record).
      if (added) void this.#takeBack(lane, id, added);
      throw error;
    }
    if (admitted !== "admitted") {
      this.#laneRegisteredAt.delete(lane);
      // "exists" (a 144-bit id collision): BullMQ kept the existing job; leave it be.
      if (admitted === "exists") throw new Error(`job ${id} already exists`);
      if (added) await this.#takeBack(lane, id, added);
      if (admitted === "unchecked" && !pruned) {
        // At the cap, and not checked lately: drop the entries of jobs that left the queue,
        // then submit again, admitted first and added after. As a new job: the one taken
        // back may have been claimed (and dropped: no record) meanwhile, and BullMQ would
        // ignore a second add of its id.
        await this.#cap.prune(tenant, now, bytes);
        return attempt.resubmit();
      }
      this.#fullUntil.set(tenant, now + FULL_RECHECK_MS);
      throw this.#fullError(tenant, admitted === "bytes" ? "bytes" : "full");
    }
    this.#fullUntil.delete(tenant);
    try {
      await (added ?? this.#add(lane, payload));
      // Listed for fair claim once the job is in the lane's delayed set (a release finds it there).
      await this.#fair.hold(lane, [this.#held(payload, options.source, priority)], now);
    } catch (error) {
      // Added but not listed, it would never be released: take it out.
      await this.#lanes
        .get(lane)
        .remove(id)
        .catch(() => undefined);
      this.#laneRegisteredAt.delete(lane);
      try {
        await this.#moves.failEnqueue({ id }, this.#clock());
      } catch (markError) {
        this.#logger.warn({ err: markError, job_id: id }, "could not mark an unqueued job as failed");
      }
      await this.#releaseQuietly(tenant, id);
      throw error;
    }
    // Noted before the WAIT: the job may run and go final while replicas confirm, and its
    // final event must find it noted.
    attempt.queued = true;
    this.#events.noteCreated(id, tenant, now);
    // The job is queued either way; an error here answers the client without its id.
    await this.#replicaWait?.confirm(`job ${id}`);
    this.#logger.debug({ job_id: id, tenant, model: model.id, source: options.source, lane }, "job queued");
    this.#onSubmitted(record, payload.audio?.seconds ?? 0);
    return record;
  }

  /**
   * Queues many jobs of one tenant at once (batch ingest): validates each like
   * {@link submit}, admits the valid ones in order against the tenant's queued limits
   * (jobs and bytes) as far as they fit, writing their records in the same script (SET,
   * not in the tenant's job list), adds each lane to the lanes set once, and adds the
   * admitted jobs with one `addBulk` per lane. The caller chooses the job ids; a job whose
   * record exists already counts as admitted, and BullMQ ignores a job id it already
   * holds, so submitting the same jobs again (a resumed ingest) queues nothing twice.
   *
   * A job whose input is invalid (unknown model, `max_tokens` over the context…) is
   * returned in `rejected` with its error. When the tenant is at a limit, `waiting` is the
   * index of the first valid job that did not fit: it and every valid job after it are not
   * queued (submit them again later).
   */
  async submitMany(tenant: string, jobs: readonly BulkJob[], options: SubmitOptions): Promise<BulkSubmitResult> {
    const now = this.#clock();
    const valid: { index: number; record: JobRecord; payload: JobPayload; lane: string; priority: number }[] = [];
    const rejected: BulkSubmitResult["rejected"] = [];
    for (const [index, job] of jobs.entries()) {
      let model: CatalogModel;
      let payload: JobPayload;
      try {
        model = this.resolveModel(job.input.model);
        payload = this.#payload(job.id, tenant, model, job.input, options, now);
        payload.fair_cost = costOf(payload, await this.#promptLength?.check(model, payload, maxTokensGiven(job.input)));
      } catch (error) {
        if (!(error instanceof CorralError)) throw error;
        rejected.push({ index, job, error });
        continue;
      }
      const priority = options.priority ?? job.input.priority ?? DEFAULT_CLIENT_PRIORITY;
      const record = queuedJobRecord({
        id: job.id,
        tenant,
        model: model.id,
        source: options.source,
        priority,
        created_at: now,
        metadata: job.input.metadata,
        batch_id: job.batch_id,
        // A custom_id belongs to a batch line only.
        custom_id: job.batch_id !== undefined ? job.custom_id : undefined,
      });
      valid.push({ index, record, payload, lane: laneName(model.id), priority });
    }
    if (valid.length === 0) return { queued: [], rejected, waiting: null };
    // Records first (in the admission script): a worker drops a job whose record it cannot find.
    const { admitted } = await this.#cap.admitMany(
      tenant,
      valid.map(({ record, payload }) => ({ record, bytes: this.#bytesOf(record, payload) })),
      now,
    );
    const taken = valid.slice(0, admitted);
    const waiting = valid[admitted]?.index ?? null;
    const byLane = new Map<string, { name: string; data: JobPayload; opts: BulkJobOptions }[]>();
    const heldByLane = new Map<string, HeldJob[]>();
    for (const { record, payload, lane, priority } of taken) {
      let entries = byLane.get(lane);
      if (!entries) byLane.set(lane, (entries = []));
      entries.push({ name: payload.kind, data: payload, opts: this.#jobOptions(record.id) });
      let held = heldByLane.get(lane);
      if (!held) heldByLane.set(lane, (held = []));
      held.push(this.#held(payload, options.source, priority));
    }
    if (byLane.size > 0) {
      await this.#redis.sadd(this.#keys.lanes, ...byLane.keys());
      await Promise.all([...byLane].map(([lane, entries]) => this.#lanes.get(lane).addBulk(entries)));
      // Then listed for fair claim, every lane in one round trip. A job BullMQ already held
      // (a resumed ingest) is listed again: its first release moves it, the other entry is
      // dropped as stale.
      const pipeline = this.#fair.pipeline();
      for (const [lane, held] of heldByLane) this.#fair.queueHold(pipeline, lane, held, now);
      for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
    }
    const queued = taken.map(({ record }) => record);
    for (const record of queued) this.#onSubmitted(record, 0);
    this.#logger.debug(
      { tenant, queued: queued.length, rejected: rejected.length, waiting, source: options.source },
      "jobs queued in bulk",
    );
    return { queued, rejected, waiting };
  }

  /** The bytes a queued job holds in Redis (its record and its BullMQ payload as stored); 0 when bytes are not limited. */
  #bytesOf(record: JobRecord, payload: JobPayload): number {
    if (this.#cap.maxBytes === 0) return 0;
    return (
      Buffer.byteLength(JSON.stringify(record)) +
      Buffer.byteLength(JSON.stringify(payload)) +
      (payload.audio?.bytes ?? 0)
    );
  }

  /** The 429 for a tenant at its queued limit: jobs ("full") or bytes. */
  #fullError(tenant: string, limit: "full" | "bytes"): QueueFullError {
    return limit === "bytes"
      ? new QueueFullError(
          `Tenant ${tenant}'s queued jobs would hold more than ${this.#cap.maxBytes} bytes in Redis with this one ` +
            `(CORRAL_MAX_QUEUED_BYTES_PER_TENANT). Wait for some to start, or cancel some.`,
        )
      : new QueueFullError(
          `Tenant ${tenant} already has ${this.#cap.max} queued jobs (CORRAL_MAX_QUEUED_PER_TENANT). ` +
            `Wait for some to start, or cancel some.`,
        );
  }

  /** A model by id or alias. @throws ModelNotFoundError listing the models that exist. */
  resolveModel(name: string): CatalogModel {
    const model = this.#catalog.resolve(name);
    if (!model)
      throw new ModelNotFoundError(
        name,
        this.#catalog.list().map((m) => m.id),
      );
    return model;
  }

  /** The tenant's job. @throws InvalidRequestError for a malformed id, NotFoundError when absent or another tenant's. */
  async get(tenant: string, id: string): Promise<JobRecord> {
    assertJobId(id);
    const record = await this.#records.getForTenant(id, tenant);
    if (!record) throw jobNotFound(id);
    return record;
  }

  /** The tenant's jobs, newest first. `limit` 1–100 (default 20); `after` pages on from a job id. */
  async list(tenant: string, options: ListOptions = {}): Promise<JobPage> {
    const parsed = ListQuery.safeParse(options);
    if (!parsed.success) throw ValidationError.fromZod(parsed.error);
    if (parsed.data.after !== undefined) assertJobId(parsed.data.after, "after");
    const { data, has_more } = await this.#records.listForTenant(tenant, parsed.data);
    return {
      object: "list",
      data,
      has_more,
      first_id: data[0]?.id ?? null,
      last_id: data.at(-1)?.id ?? null,
    };
  }

  /**
   * Cancels the tenant's job.
   * - Waiting (queued) jobs leave their lane and their record becomes `cancelled` at once.
   * - Running jobs (or ones a worker has just claimed) get a cancel published on the cancel
   *   channel; the worker aborts and records `cancelled` itself. The record returned is
   *   still `running` (or `queued`) then.
   * See {@link cancelMany} for the rules; this is the same path for one job.
   * @throws ConflictError (409) when the job is already final.
   */
  async cancel(tenant: string, id: string): Promise<JobRecord> {
    const record = await this.get(tenant, id);
    if (isFinalStatus(record.status)) {
      throw new ConflictError(
        `Job ${id} is already ${record.status}; only queued or running jobs can be cancelled.`,
        "job_finished",
      );
    }
    const [outcome] = await this.#cancelRecords([record]);
    if (outcome?.outcome === "cancelled" && outcome.record) {
      this.#logger.info({ job_id: id, tenant }, "queued job cancelled");
      return outcome.record;
    }
    if (outcome?.outcome === "missing") throw jobNotFound(id);
    if (outcome?.outcome === "final" && outcome.record) return outcome.record;
    this.#logger.info({ job_id: id, tenant }, "cancel published for a running job");
    return (await this.#records.getForTenant(id, tenant)) ?? record;
  }

  /**
   * Cancels many jobs of any tenant (the caller decided they go: a cancelled or expired
   * batch's lines). The one cancel path; {@link cancel} takes it for one job. Records that
   * are missing or final are left alone. For each job:
   * - queued: removed from its lane, then its record moves queued → cancelled
   *   (`cancelQueued`) whatever the removal said. BullMQ's `remove()` gives 0 when a worker
   *   holds the job's lock (it has just claimed it) or when the job is gone from BullMQ (a
   *   worker dropped it, it was taken back). Cancelling the record is right in both: the
   *   worker's queued → running move then fails and it drops the job without running it,
   *   and a job that is gone would otherwise stay queued for ever. Only when the record
   *   has meanwhile become running (the worker started it first) is a cancel published;
   * - running: a cancel is published on the cancel channel, and the worker holding the job
   *   aborts it and records it cancelled (with its partial text).
   * A queued job's place in its tenant's queued limits is given back (batch lines' too).
   */
  async cancelMany(ids: readonly string[]): Promise<{ cancelled: number; signalled: number }> {
    const records = (await this.#records.getMany(ids)).filter(
      (record): record is JobRecord => record !== null && !isFinalStatus(record.status),
    );
    const outcomes = await this.#cancelRecords(records);
    return {
      cancelled: outcomes.filter((o) => o.outcome === "cancelled").length,
      signalled: outcomes.filter((o) => o.outcome === "signalled").length,
    };
  }

  /** Deletes job records (a finalized batch's lines, whose results are in its files). */
  async dropRecords(ids: readonly string[]): Promise<void> {
    await this.#records.removeMany(ids);
  }

  /**
   * The tenant's job once it is final, or as it is after `timeoutMs` (or when `signal`
   * aborts, or the service closes). Uses one job-events subscription per process.
   * @throws NotFoundError when the job does not exist (or is another tenant's).
   */
  async waitForFinal(tenant: string, id: string, timeoutMs: number, signal?: AbortSignal): Promise<JobRecord> {
    assertJobId(id);
    const seen: { record: JobRecord | null } = { record: null };
    const { outcome, record } = await this.#events.waitFor(
      id,
      Math.max(0, timeoutMs),
      async () => {
        // A job this process created while subscribed: its final event would have come.
        const known = this.#events.known(id, tenant);
        if (known?.final === false) return false;
        if (known?.final === true && known.record !== null) {
          seen.record = JobRecord.parse(JSON.parse(known.record));
          return true;
        }
        seen.record = await this.#records.getForTenant(id, tenant);
        return seen.record === null || isFinalStatus(seen.record.status);
      },
      signal,
    );
    if (outcome === "event" && record !== null) {
      // The final record came with the event: no need to read it back.
      const published = JobRecord.parse(JSON.parse(record));
      seen.record = published.tenant === tenant ? published : null;
    } else if (outcome !== "ready" && (outcome !== "aborted" || seen.record === null)) {
      seen.record = await this.#records.getForTenant(id, tenant);
    }
    if (!seen.record) throw jobNotFound(id);
    return seen.record;
  }

  /** Ends every `waitForFinal` in progress now (they answer with the current record). */
  interruptWaits(): void {
    this.#events.interrupt();
  }

  /** Ends waits, closes the job-events connection and (when owned) the lanes' Queues. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        await this.#events.close();
      } catch (error) {
        this.#logger.warn({ err: error }, "closing job events failed");
      }
      if (this.#ownsLanes) {
        try {
          await this.#lanes.close();
        } catch (error) {
          this.#logger.warn({ err: error }, "closing lanes failed");
        }
      }
    })();
    return this.#closing;
  }

  /** See {@link cancelMany}: each record's outcome, with its record as it is now (null when gone). */
  async #cancelRecords(records: readonly JobRecord[]): Promise<CancelOutcome[]> {
    const outcomes = await Promise.all(
      records.map(async (record): Promise<CancelOutcome> => {
        if (record.status !== "queued") return { id: record.id, outcome: "signalled", record };
        await this.#lanes.get(laneName(record.model)).remove(record.id);
        const cancelled = await this.#moves.cancelQueued(record, this.#clock());
        await this.#releaseQuietly(record.tenant, record.id);
        // A transcription's audio (none for other jobs): no worker will read it now.
        if (cancelled) await this.#audio.remove(record.id);
        return cancelled
          ? { id: record.id, outcome: "cancelled", record: cancelled }
          : { id: record.id, outcome: "signalled", record: null };
      }),
    );
    // A queued job that could not be cancelled: see what it is now (running, final, gone).
    const recheck = outcomes.filter((o) => o.outcome === "signalled" && o.record === null);
    const current = await this.#records.getMany(recheck.map((o) => o.id));
    recheck.forEach((o, i) => {
      const record = current[i] ?? null;
      o.record = record;
      if (record === null) o.outcome = "missing";
      else if (isFinalStatus(record.status)) o.outcome = "final";
    });
    const signalled = outcomes.filter((o) => o.outcome === "signalled");
    if (signalled.length > 0) {
      const pipeline = this.#redis.pipeline();
      for (const { id } of signalled) pipeline.publish(this.#keys.cancelChannel, id);
      await pipeline.exec();
    }
    return outcomes;
  }

  /** The fair queue jobs wait in until a slot releases them (reads for positions and metrics). */
  get fair(): FairQueue {
    return this.#fair;
  }

  /** A job as fair claim holds it: its tenant's weight, its band and level, its cost. */
  #held(payload: JobPayload, source: JobSource, priority: number): HeldJob {
    return {
      id: payload.id,
      tenant: payload.tenant,
      weight: this.#shares.get(payload.tenant) ?? 1,
      priority: bullPriority(source, priority),
      createdAt: payload.created_at,
      cost: payload.fair_cost ?? estimateCost(0, payload.max_tokens),
    };
  }

  /** Adds the job to its lane's BullMQ queue, held (delayed) until fair claim releases it. */
  #add(lane: string, payload: JobPayload): Promise<unknown> {
    const added = this.#lanes.get(lane).add(payload.kind, payload, this.#jobOptions(payload.id));
    // Awaited by the caller; marked handled meanwhile in case admission fails first.
    added.catch(() => undefined);
    return added;
  }

  /** Removes a job added ahead of an admission that then refused it (or failed). */
  async #takeBack(lane: string, id: string, added: Promise<unknown>): Promise<void> {
    try {
      await added;
      await this.#lanes.get(lane).remove(id);
    } catch (error) {
      // A worker that claims it finds no record and drops it.
      this.#logger.debug({ err: error, job_id: id }, "could not take back a refused job");
    }
  }

  /** Whether a submit of `tenant` found its queue full in the last {@link FULL_RECHECK_MS}. */
  #recentlyFull(tenant: string, now: number): boolean {
    const until = this.#fullUntil.get(tenant);
    if (until === undefined) return false;
    if (until > now) return true;
    this.#fullUntil.delete(tenant);
    return false;
  }

  /**
   * `lane` when it should be (re)added to the lanes set workers read, null when this
   * process did so in the last {@link LANE_REGISTER_MS} (it is re-added now and then in
   * case Redis lost it).
   */
  #laneToRegister(lane: string, now: number): string | null {
    const at = this.#laneRegisteredAt.get(lane);
    if (at !== undefined && now - at < LANE_REGISTER_MS) return null;
    this.#laneRegisteredAt.set(lane, now);
    return lane;
  }

  /**
   * BullMQ options of a job: held in the delayed set until fair claim releases it (no BullMQ
   * priority: bands and levels are fair claim's), retries with backoff, and retention.
   */
  #jobOptions(id: string): JobsOptions {
    return {
      jobId: id,
      delay: HOLD_DELAY_MS,
      attempts: this.#attempts,
      backoff: { type: "exponential", delay: this.#backoffMs },
      removeOnComplete: REMOVE_ON_COMPLETE,
      removeOnFail: REMOVE_ON_FAIL,
    };
  }

  #payload(
    id: string,
    tenant: string,
    model: CatalogModel,
    input: JobInput,
    options: SubmitOptions,
    now: number,
  ): JobPayload {
    const kind = input.kind ?? (input.messages ? "chat" : input.input ? "embedding" : "completion");
    const audioJob = kind === "transcription" || kind === "translation";
    if (audioJob !== (model.kind === "whisper")) {
      throw new InvalidRequestError(
        audioJob
          ? `Model ${model.id} is not a Whisper (speech to text) model; ${kind}s need a model of kind whisper.`
          : `Model ${model.id} is a Whisper (speech to text) model: use it with /v1/audio/transcriptions or /v1/audio/translations.`,
        "model",
        "model_not_supported",
      );
    }
    // Whisper jobs have no token limit; the schema requires one, and the worker ignores it.
    const maxTokens = audioJob ? 1 : (input.max_tokens ?? Math.min(DEFAULT_MAX_TOKENS, model.context_size));
    if (maxTokens > model.context_size) {
      throw new InvalidRequestError(
        `max_tokens is ${maxTokens}, but model ${model.id} has a context of ${model.context_size} tokens per sequence.`,
        "max_tokens",
        "context_length_exceeded",
      );
    }
    // Built, not parsed: every field comes from an input the route already validated
    // (JobRequest, the OpenAI schemas, a batch line) or from the catalog. The worker
    // parses the payload again when it claims the job.
    const payload: JobPayload = {
      id,
      tenant,
      model: model.id,
      file: model.file,
      source: options.source,
      kind,
      prompt: input.prompt,
      messages: input.messages,
      input: input.input,
      max_tokens: maxTokens,
      temperature: input.temperature ?? 0.8,
      top_p: input.top_p,
      top_k: input.top_k,
      seed: input.seed,
      stop: input.stop,
      frequency_penalty: input.frequency_penalty,
      presence_penalty: input.presence_penalty,
      logit_bias: input.logit_bias,
      logprobs: input.logprobs,
      top_logprobs: input.top_logprobs,
      reasoning_budget: input.reasoning_budget,
      response_format: input.response_format,
      tools: input.tools,
      ...(input.audio
        ? {
            audio: {
              key: this.#keys.audio(id),
              bytes: input.audio.data.byteLength,
              seconds: input.audio.seconds,
              filename: input.audio.filename,
            },
          }
        : {}),
      ...(input.language !== undefined ? { language: input.language } : {}),
      ...(input.word_timestamps ? { word_timestamps: true } : {}),
      stream: input.stream ?? false,
      requirement_bytes: model.requirement_bytes,
      max_active: tenantSetting(this.#maxActive, tenant) ?? undefined,
      created_at: now,
    };
    const missing =
      (kind === "completion" && payload.prompt === undefined && "prompt") ||
      (kind === "chat" && payload.messages === undefined && "messages") ||
      (kind === "embedding" && payload.input === undefined && "input") ||
      (audioJob && payload.audio === undefined && "file");
    if (missing)
      throw new InvalidRequestError(`A ${kind} job needs \`${missing}\`.`, missing, "missing_required_parameter");
    // Every route (native, OpenAI, batch lines): a schema the grammar cannot enforce, or one
    // too big to sample in time (JSON_SCHEMA_LIMITS), is refused before it is queued.
    if (input.response_format?.type === "json_schema") {
      const problem = validateJsonSchemaForGrammar(input.response_format.json_schema.schema);
      if (problem !== null)
        throw new InvalidRequestError(problem, "response_format.json_schema.schema", "unsupported_schema");
    }
    return payload;
  }

  async #releaseQuietly(tenant: string, id: string): Promise<void> {
    try {
      await this.#cap.release(tenant, id);
    } catch (error) {
      this.#logger.warn({ err: error, job_id: id }, "could not release a queued-cap entry");
    }
  }
}

/** One try of {@link JobService.submit}: whether its job got queued, and how to submit it again as a new job. */
interface QueueAttempt {
  queued: boolean;
  resubmit: () => Promise<JobRecord>;
}

/** `fn`, run at most once (later calls share the first call's promise). */
function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | null = null;
  return () => (done ??= fn());
}

/** What a cancel did to one job. */
interface CancelOutcome {
  id: string;
  /** cancelled (queued, now cancelled), signalled (a cancel was published), final or missing (left alone). */
  outcome: "cancelled" | "signalled" | "final" | "missing";
  record: JobRecord | null;
}

const jobNotFound = (id: string): NotFoundError => new NotFoundError(`No job with id ${id}.`, "id", "job_not_found");

/**
 * A transcription's fair-claim cost in tokens: {@link AUDIO_TOKENS_PER_SECOND} per second of
 * audio (Whisper's encoder reads 50 frames a second), and the worker settles at exactly it.
 */
export function audioCost(seconds: number): number {
  return estimateCost(Math.ceil(seconds * AUDIO_TOKENS_PER_SECOND), 0);
}

/** A job's fair-claim cost: its prompt tokens as counted (or about 4 bytes a token when not) and its max_tokens. */
function costOf(payload: JobPayload, promptTokens: number | null | undefined): number {
  if (typeof promptTokens === "number") return estimateCost(promptTokens, payload.max_tokens);
  const text = payload.prompt ?? (payload.messages ?? []).map((message) => message.content ?? "").join("\n");
  const bytes = typeof text === "string" ? Buffer.byteLength(text) : Buffer.byteLength(JSON.stringify(text));
  return estimateCost(Math.ceil(bytes / 4), payload.max_tokens);
}

/** Whether the client chose the job's `max_tokens` (so the prompt must leave room for all of it). */
const maxTokensGiven = (input: JobInput): boolean =>
  input.max_tokens !== undefined && input.max_tokens_is_default !== true;
