import type { ChainableCommander, Redis } from "ioredis";
import type { RedisKeys } from "../keys.js";
import { commandPipeline, queueCommand, runCommand } from "./redis-commands.js";

/**
 * Fair claim: queued jobs wait in per-(lane, tenant) lists Corral owns, and a slot with a
 * free sequence releases the job fairness picks when it claims, not when the job was
 * queued. The jobs themselves are BullMQ jobs added to their lane's delayed set with
 * {@link HOLD_DELAY_MS} (never due): BullMQ keeps their data, retries and retention as
 * before, and no slot can take one until it is released.
 *
 * - {@link FairQueue.hold} (scheduler, after the BullMQ add) lists the jobs
 *   (`holdFair-4.lua`), lifting the counter of a tenant that starts waiting.
 * - {@link FairQueue.release} (slot, just before it takes) moves the next jobs into the
 *   lane's wait list (`releaseFair-7.lua`): earliest band, then the tenant with the lowest
 *   weighted virtual token counter, which is charged the job's estimated cost ÷ weight.
 * - {@link FairQueue.settle} (slot, batched) corrects the charges with the tokens used.
 *
 * The algorithm, its bound and its settings are in docs/architecture.md ("Fair claim").
 */

/** How far in the future a held job is due: never, in practice (a year). */
export const HOLD_DELAY_MS = 365 * 24 * 60 * 60 * 1000;

/** Default credit a tenant that starts waiting gets against the backlog (weighted tokens). */
export const DEFAULT_FAIR_CREDIT_TOKENS = 4096;

/** A job to hold. */
export interface HeldJob {
  id: string;
  tenant: string;
  /** The tenant's weight (share), > 0. */
  weight: number;
  /** BullMQ level, 1-1100 ({@link bullPriority}): the band, then the tenant's own order. */
  priority: number;
  /** Its place in its tenant's order within a level: when it was created (ms since the epoch). */
  createdAt: number;
  /** Estimated cost in tokens (prompt + max tokens), charged at release. */
  cost: number;
}

/** A job released to its lane's wait list. */
export interface ReleasedJob {
  id: string;
  tenant: string;
  /** What the tenant's counter was charged (cost ÷ weight). */
  charged: number;
}

/** What a lane holds for fair claim, read without changing anything. */
export interface FairLaneSummary {
  lane: string;
  /** Held jobs (entries of cancelled jobs count until a release drops them). */
  held: number;
  /** The earliest band with a held job (0 interactive, 1 native, 2 batch); null when none. */
  band: 0 | 1 | 2 | null;
  /** When the lane last started waiting (ms), null when it holds nothing. */
  since: number | null;
  /** When it last released a job (ms), null when never. */
  served: number | null;
}

/** One tenant's place on a lane. */
export interface FairTenantView {
  tenant: string;
  held: number;
  counter: number;
  weight: number;
}

export interface FairQueueOptions {
  /** Weighted tokens a tenant that starts waiting may be ahead of the backlog. @defaultValue {@link DEFAULT_FAIR_CREDIT_TOKENS} */
  creditTokens?: number;
}

/** The estimated cost of a job in tokens: its prompt (estimated when not counted) and its `max_tokens`. */
export function estimateCost(promptTokens: number, maxTokens: number): number {
  return Math.max(1, Math.ceil(promptTokens) + Math.max(0, Math.floor(maxTokens)));
}

export class FairQueue {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #credit: number;

  constructor(redis: Redis, keys: RedisKeys, options: FairQueueOptions = {}) {
    this.#redis = redis;
    this.#keys = keys;
    this.#credit = options.creditTokens ?? DEFAULT_FAIR_CREDIT_TOKENS;
  }

  #holdKeys(lane: string): string[] {
    const k = this.#keys;
    return [k.fairJobs(lane), k.fairBacklog(lane), k.fairCounters, k.fairWeights];
  }

  #holdArgs(jobs: readonly HeldJob[], now: number): (string | number)[] {
    const args: (string | number)[] = [now, this.#credit];
    for (const job of jobs) {
      if (!(job.weight > 0)) throw new RangeError(`tenant ${job.tenant}: weight must be > 0, not ${job.weight}`);
      args.push(
        job.tenant,
        job.weight,
        Math.min(9999, Math.max(1, Math.round(job.priority))),
        Math.max(0, Math.round(job.createdAt)),
        Math.round(job.cost),
        job.id,
      );
    }
    return args;
  }

  /** Lists jobs already added to `lane`'s delayed set with {@link HOLD_DELAY_MS}; resolves with how many. */
  async hold(lane: string, jobs: readonly HeldJob[], now = Date.now()): Promise<number> {
    if (jobs.length === 0) return 0;
    return runCommand(this.#redis, "holdFair", this.#holdKeys(lane), this.#holdArgs(jobs, now));
  }

  /** {@link hold} queued on a pipeline made by `commandPipeline`. */
  queueHold(pipeline: ChainableCommander, lane: string, jobs: readonly HeldJob[], now = Date.now()): void {
    if (jobs.length > 0) queueCommand(pipeline, "holdFair", this.#holdKeys(lane), this.#holdArgs(jobs, now));
  }

  #releaseKeys(lane: string): string[] {
    return [
      ...this.#holdKeys(lane),
      // BullMQ's key layout (QueueKeys.toKey): `<prefix>:<queue>:<type>`.
      `${this.#keys.prefix}:${lane}:delayed`,
      `${this.#keys.prefix}:${lane}:wait`,
      `${this.#keys.prefix}:${lane}:prioritized`,
    ];
  }

  /**
   * Releases up to `count` of the lane's held jobs to its wait list, fairest first. The
   * command is sent at once, so a BullMQ call made after it on the same connection (a
   * fetch-next completion) runs after it.
   */
  async release(lane: string, count: number, now = Date.now()): Promise<ReleasedJob[]> {
    return (await this.releaseForClaim(lane, count, now)).released;
  }

  /**
   * {@link release}, and how many jobs the lane then has ready to take (its wait list, its
   * prioritized set and its due retries): a slot claims no more than that.
   */
  async releaseForClaim(
    lane: string,
    count: number,
    now = Date.now(),
  ): Promise<{ released: ReleasedJob[]; ready: number }> {
    const reply = await runCommand(this.#redis, "releaseFair", this.#releaseKeys(lane), [Math.max(0, count), now]);
    const released: ReleasedJob[] = [];
    for (let i = 1; i + 2 < reply.length; i += 3)
      released.push({ id: String(reply[i]), tenant: String(reply[i + 1]), charged: Number(reply[i + 2]) });
    return { released, ready: Number(reply[0] ?? 0) };
  }

  /** Corrects tenants' counters by `tokens` used minus estimated, per tenant (one call for all). */
  async settle(corrections: ReadonlyMap<string, number>): Promise<void> {
    const args: (string | number)[] = [];
    for (const [tenant, tokens] of corrections) if (Number.isFinite(tokens) && tokens !== 0) args.push(tenant, tokens);
    if (args.length === 0) return;
    await runCommand(this.#redis, "settleFair", [this.#keys.fairCounters, this.#keys.fairWeights], args);
  }

  /** Each lane's held jobs, earliest band and times, in one pipelined round trip. */
  async summaries(lanes: readonly string[]): Promise<FairLaneSummary[]> {
    if (lanes.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const lane of lanes) pipeline.hmget(this.#keys.fairBacklog(lane), ...FAIR_SUMMARY_FIELDS);
    const replies = (await pipeline.exec()) ?? [];
    return lanes.map((lane, i) => {
      const [error, fields] = replies[i] ?? [new Error("missing pipeline reply"), null];
      if (error) throw error;
      return summaryOf(lane, fields as (string | null)[]);
    });
  }

  /** {@link summaries} queued on a pipeline; parse each reply with {@link summaryOf}. */
  queueSummary(pipeline: ChainableCommander, lane: string): void {
    pipeline.hmget(this.#keys.fairBacklog(lane), ...FAIR_SUMMARY_FIELDS);
  }

  /** The tenants waiting on a lane, with their held jobs, counters and weights. */
  async tenants(lane: string): Promise<FairTenantView[]> {
    const backlog = await this.#redis.hgetall(this.#keys.fairBacklog(lane));
    const names = Object.keys(backlog).filter((name) => !name.startsWith("|") && Number(backlog[name]) > 0);
    if (names.length === 0) return [];
    const [counters, weights] = await Promise.all([
      this.#redis.hmget(this.#keys.fairCounters, ...names),
      this.#redis.hmget(this.#keys.fairWeights, ...names),
    ]);
    return names.map((tenant, i) => ({
      tenant,
      held: Number(backlog[tenant]),
      counter: Number(counters[i] ?? 0) || 0,
      weight: Number(weights[i] ?? 1) || 1,
    }));
  }

  /** Every tenant's counter. */
  async counters(): Promise<Map<string, number>> {
    const hash = await this.#redis.hgetall(this.#keys.fairCounters);
    return new Map(Object.entries(hash).map(([tenant, value]) => [tenant, Number(value)]));
  }

  /** A pipeline with the scripts defined (for {@link queueHold}). */
  pipeline(): ChainableCommander {
    return commandPipeline(this.#redis);
  }
}

/** The fields of a lane's backlog hash its summary reads (`HMGET`), in {@link summaryOf}'s order. */
export const FAIR_SUMMARY_FIELDS = ["|b0", "|b1", "|b2", "|since", "|served"] as const;

/** A lane's summary from its `HMGET` of {@link FAIR_SUMMARY_FIELDS}. */
export function summaryOf(lane: string, fields: readonly (string | null)[]): FairLaneSummary {
  const [b0, b1, b2, since, served] = fields.map((value) => (value === null ? null : Number(value)));
  const bands = [b0, b1, b2];
  const band = bands.findIndex((count) => (count ?? 0) > 0);
  const held = bands.reduce<number>((total, count) => total + Math.max(0, count ?? 0), 0);
  return {
    lane,
    held,
    band: held > 0 && band >= 0 ? (band as 0 | 1 | 2) : null,
    since: held > 0 ? (since ?? null) : null,
    served: served ?? null,
  };
}
