/**
 * Redis key and BullMQ queue names, in one place. Every key lives under one prefix
 * wrapped in a hash tag (`{corral}`), so all of Corral's keys hash to one Redis Cluster
 * slot and BullMQ's multi-key Lua scripts work there.
 */

/** Wraps a bare prefix in a hash tag: `corral` → `{corral}`. Already-tagged prefixes pass through. */
export const hashTagPrefix = (prefix: string): string =>
  prefix.startsWith("{") && prefix.endsWith("}") ? prefix : `{${prefix}}`;

/** Allowed characters in model ids used as lane names. */
const LANE_SAFE = /[^A-Za-z0-9._-]/g;

/** Prefix of every lane name. BullMQ 6 rejects queue names containing ':'. */
export const LANE_PREFIX = "lane-";

/** The BullMQ queue ("lane") name for a model. */
export const laneName = (modelId: string): string => `${LANE_PREFIX}${modelId.replace(LANE_SAFE, "_")}`;

/** All the Redis keys Corral uses for one prefix. */
export class RedisKeys {
  /** The hash-tagged prefix, also passed to BullMQ as its `prefix`. */
  readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = hashTagPrefix(prefix);
  }

  /** JSON of the published model catalog. */
  get catalog(): string {
    return `${this.prefix}:catalog`;
  }
  /**
   * String: a hash of the catalog's models, written with the catalog; it changes only when
   * the models do. Slots read it first and the catalog only when it changed.
   */
  get catalogVersion(): string {
    return `${this.prefix}:catalog:version`;
  }
  /** Pub/sub channel: a job id to cancel. */
  get cancelChannel(): string {
    return `${this.prefix}:cancel`;
  }
  /**
   * Sorted set: the jobs of open OpenAI requests (streaming or waiting), each scored by the
   * ms (epoch) its scheduler's lease on it runs out. A slot cancels such a job once its
   * lease ran out: its scheduler died, so nobody is listening.
   */
  get interactiveLeases(): string {
    return `${this.prefix}:interactive-leases`;
  }
  /** Pub/sub channel: a job id whose record reached a final state. */
  get jobEventsChannel(): string {
    return `${this.prefix}:job-events`;
  }
  /**
   * String: the uploaded audio of a transcription or translation job (`JobPayload.audio`),
   * written by the scheduler with a TTL, deleted by the worker when the job ends.
   */
  audio(jobId: string): string {
    return `${this.prefix}:audio:${jobId}`;
  }
  /**
   * Hash: the milliseconds of audio each tenant's transcription and translation jobs were
   * admitted with on one UTC day, `<tenant>` → ms; `day` is `YYYY-MM-DD`. Written by the
   * scheduler at admission; expires two days after its last write.
   */
  audioUsed(day: string): string {
    return `${this.prefix}:audio-used:${day}`;
  }
  /** Hash: the job record. */
  job(id: string): string {
    return `${this.prefix}:job:${id}`;
  }
  /** Sorted set of a tenant's job ids, scored by creation time. */
  tenantJobs(tenant: string): string {
    return `${this.prefix}:tenant:${tenant}:jobs`;
  }
  /**
   * Sorted set: the tenant's running jobs that count against its `max_active`, each scored
   * with when its place expires unless renewed (ms). Written by worker slots.
   */
  tenantActive(tenant: string): string {
    return `${this.prefix}:tenant:${tenant}:active`;
  }
  /** List: `<lane>\t<job id>` of the tenant's jobs parked (delayed) at its `max_active`, oldest first. */
  tenantParked(tenant: string): string {
    return `${this.prefix}:tenant:${tenant}:parked`;
  }
  /** Hash: tenants with parked jobs → their `max_active`, for the slots' sweep. */
  get parkedTenants(): string {
    return `${this.prefix}:parked-tenants`;
  }
  /** Sorted set of a tenant's queued job ids (the per-tenant cap), scored by creation time; pruned lazily. */
  tenantQueued(tenant: string): string {
    return `${this.prefix}:tenant:${tenant}:queued`;
  }
  /**
   * Hash of the bytes each job in the tenant's queued set holds in Redis (its record and
   * payload), and their sum in the field `:total` (the per-tenant byte limit); pruned with the set.
   */
  tenantQueuedBytes(tenant: string): string {
    return `${this.prefix}:tenant:${tenant}:queued-bytes`;
  }
  /** Short-lived marker: the tenant's queued set was found full (spares rescans while clients retry). */
  tenantQueuedFull(tenant: string): string {
    return `${this.prefix}:tenant:${tenant}:queued-full`;
  }
  /** Stream of generated tokens for one job (capped, with a TTL). */
  tokens(id: string): string {
    return `${this.prefix}:tokens:${id}`;
  }
  /** Heartbeat of one worker slot (a string with a TTL). */
  worker(id: string): string {
    return `${this.prefix}:worker:${id}`;
  }
  /** Set of worker ids that have written a heartbeat (entries expire lazily). */
  get workers(): string {
    return `${this.prefix}:workers`;
  }
  /**
   * Hash: the tokens (prompt + completion) each tenant's jobs used on one UTC day,
   * `<tenant>` → count; `day` is `YYYY-MM-DD`. Expires two days after its last write.
   */
  tokensUsed(day: string): string {
    return `${this.prefix}:tokens:${day}`;
  }
  /**
   * Sorted set (all scores 0, read by lex range): the jobs held for fair claim on one lane,
   * one member per job, `<tenant>|<priority, 4 digits>|<created at, ms, 13 digits>|<charge: cost ÷ weight>|<job id>`,
   * so each tenant's entries are contiguous and its next job is the first of them. See
   * {@link FairQueue}.
   */
  fairJobs(lane: string): string {
    return `${this.prefix}:fair:${lane}:jobs`;
  }
  /**
   * Sorted set: the tenants waiting on a lane for fair claim, each scored with its earliest
   * band (0 interactive, 1 native, 2 batch), and the lane's own members, which start with
   * `|` (not a tenant character): `|since` (when the lane started waiting, ms), `|served`
   * (its last release, ms), `|floor` (the highest counter its releases served: the lane's
   * virtual time).
   */
  fairTenants(lane: string): string {
    return `${this.prefix}:fair:${lane}:tenants`;
  }
  /** Hash: each tenant's weighted virtual token counter (VTC), across lanes. */
  get fairCounters(): string {
    return `${this.prefix}:fair:counters`;
  }
  /** Hash: each tenant's weight (its share, `CORRAL_TENANT_SHARES`), written when it starts waiting. */
  get fairWeights(): string {
    return `${this.prefix}:fair:weights`;
  }
  /**
   * String (expires after the stalled interval): the slot that runs the stalled-job check
   * of every lane this interval (`LaneWorkers`); the first slot to set it after it expires.
   */
  get stalledSweep(): string {
    return `${this.prefix}:stalled-sweep`;
  }
  /**
   * Sorted set of the lanes that hold jobs in any state, scored by how long their ready jobs
   * have waited since the lane was last served: what a claim loop reads (`LaneIndex`), so
   * a look costs the same whatever the size of the catalog.
   */
  get lanesWithJobs(): string {
    return `${this.prefix}:lanes:with-jobs`;
  }
  /** Set of lane (queue) names that have ever held jobs. */
  get lanes(): string {
    return `${this.prefix}:lanes`;
  }
  /** String: JSON of an uploaded or generated file's metadata (StoredFile). */
  file(id: string): string {
    return `${this.prefix}:file:${id}`;
  }
  /** Sorted set of the ids of files that expire, scored by expiry time (ms); the file sweep reads it. */
  get fileExpiry(): string {
    return `${this.prefix}:file-expiry`;
  }
  /** Hash: tenant → bytes of its stored files (the per-tenant file quota). */
  get fileBytes(): string {
    return `${this.prefix}:file-bytes`;
  }
  /** Sorted set of a tenant's file ids, scored by creation time (ms). */
  tenantFiles(tenant: string): string {
    return `${this.prefix}:tenant:${tenant}:files`;
  }
  /** String: JSON of a batch (StoredBatch). Its counters, results and lease hang off this key. */
  batch(id: string): string {
    return `${this.prefix}:batch:${id}`;
  }
  /** Hash: a batch's counters (total, completed, failed, cancelled) and ingest progress. */
  batchCounts(id: string): string {
    return `${this.batch(id)}:counts`;
  }
  /** Hash: custom_id → JSON of the line's final result (BatchLineResult), written once per custom_id. */
  batchResults(id: string): string {
    return `${this.batch(id)}:results`;
  }
  /** String with a TTL: the token of the scheduler currently working on a batch (SET NX PX). */
  batchLease(id: string): string {
    return `${this.batch(id)}:lease`;
  }
  /** Sorted set of a tenant's batch ids, scored by creation time (ms). */
  tenantBatches(tenant: string): string {
    return `${this.prefix}:tenant:${tenant}:batches`;
  }
  /** Set of a tenant's batch ids that were not final when last looked at (its limit on unfinished batches; pruned at creation). */
  tenantActiveBatches(tenant: string): string {
    return `${this.prefix}:tenant:${tenant}:batches-active`;
  }
  /** Set of batch ids that are not final yet; every scheduler's batch loop walks it. */
  get activeBatches(): string {
    return `${this.prefix}:batches:active`;
  }
  /** Hash: batch status → number of batches in it (all tenants), for metrics. */
  get batchStatusCounts(): string {
    return `${this.prefix}:batches:status-counts`;
  }
  /** Pattern matching every key under this prefix (for test cleanup). */
  get all(): string {
    return `${this.prefix}:*`;
  }
}
