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
 *   (`holdFair-5.lua`), lifting the counter of a tenant that starts waiting.
 * - {@link FairQueue.release} (slot, just before it takes) moves the next jobs into the
 *   lane's wait list (`releaseFair-8.lua`): earliest band, then the tenant with the lowest
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
  /** Its earliest band with a held job. */
  band: 0 | 1 | 2;
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
    return [k.fairJobs(lane), k.fairTenants(lane), k.fairCounters, k.fairWeights, k.lanesWithJobs];
  }

  #holdArgs(lane: string, jobs: readonly HeldJob[], now: number): (string | number)[] {
    const args: (string | number)[] = [now, this.#credit, lane];
    for (const job of jobs) {
      if (!(job.weight > 0)) throw new RangeError(`tenant ${job.tenant}: weight must be > 0, not ${job.weight}`);
      args.push(
        job.tenant,
        job.weight,
        Math.min(9999, Math.max(1, Math.round(job.priority))),
        Math.max(0, Math.round(job.createdAt)),
        // The entry carries its charge, so a release reads no weight.
        Number((job.cost / job.weight).toFixed(4)),
        job.id,
      );
    }
    return args;
  }

  /**
   * Lists jobs already added to `lane`'s delayed set with {@link HOLD_DELAY_MS}, and puts
   * the lane among the lanes with jobs ({@link LaneIndex}); resolves with how many.
   */
  async hold(lane: string, jobs: readonly HeldJob[], now = Date.now()): Promise<number> {
    if (jobs.length === 0) return 0;
    return runCommand(this.#redis, "holdFair", this.#holdKeys(lane), this.#holdArgs(lane, jobs, now));
  }

  /** {@link hold} queued on a pipeline made by `commandPipeline`. */
  queueHold(pipeline: ChainableCommander, lane: string, jobs: readonly HeldJob[], now = Date.now()): void {
    if (jobs.length > 0) queueCommand(pipeline, "holdFair", this.#holdKeys(lane), this.#holdArgs(lane, jobs, now));
  }

  #releaseKeys(lane: string): string[] {
    const k = this.#keys;
    return [
      k.fairJobs(lane),
      k.fairTenants(lane),
      k.fairCounters,
      // BullMQ's key layout (QueueKeys.toKey): `<prefix>:<queue>:<type>`.
      `${this.#keys.prefix}:${lane}:delayed`,
      `${this.#keys.prefix}:${lane}:wait`,
      `${this.#keys.prefix}:${lane}:prioritized`,
      `${this.#keys.prefix}:${lane}:marker`,
      k.lanesWithJobs,
    ];
  }

  /**
   * Releases up to `count` of the lane's held jobs to its wait list, fairest first. The
   * command is sent at once, so a BullMQ call made after it on the same connection (a
   * fetch-next completion) runs after it.
   */
  async release(lane: string, count: number, now = Date.now()): Promise<ReleasedJob[]> {
    return (await this.#release(lane, count, now, false)).released;
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
    return this.#release(lane, count, now, true);
  }

  async #release(
    lane: string,
    count: number,
    now: number,
    countReady: boolean,
  ): Promise<{ released: ReleasedJob[]; ready: number }> {
    const reply = await runCommand(this.#redis, "releaseFair", this.#releaseKeys(lane), [
      Math.max(0, count),
      now,
      countReady ? "1" : "",
      lane,
    ]);
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
    for (const lane of lanes) this.queueSummary(pipeline, lane);
    const replies = (await pipeline.exec()) ?? [];
    const value = (index: number): unknown => {
      const [error, result] = replies[index] ?? [new Error("missing pipeline reply"), null];
      if (error) throw error;
      return result;
    };
    return lanes.map((lane, i) => summaryOf(lane, value(2 * i) as string[], Number(value(2 * i + 1))));
  }

  /**
   * {@link summaries} queued on a pipeline: two commands (the lane's tenants with scores,
   * and its held count), whose replies {@link summaryOf} reads.
   */
  queueSummary(pipeline: ChainableCommander, lane: string): void {
    pipeline.zrange(this.#keys.fairTenants(lane), 0, -1, "WITHSCORES");
    pipeline.zcard(this.#keys.fairJobs(lane));
  }

  /** The tenants waiting on a lane, with their held jobs (entries), earliest bands, counters and weights. */
  async tenants(lane: string): Promise<FairTenantView[]> {
    const bands = waitingTenants(await this.#redis.zrange(this.#keys.fairTenants(lane), 0, -1, "WITHSCORES"));
    const names = [...bands.keys()];
    if (names.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const tenant of names) pipeline.zlexcount(this.#keys.fairJobs(lane), ...tenantEntries(tenant));
    pipeline.hmget(this.#keys.fairCounters, ...names);
    pipeline.hmget(this.#keys.fairWeights, ...names);
    const replies = ((await pipeline.exec()) ?? []).map(([error, result]) => {
      if (error) throw error;
      return result;
    });
    const counters = replies[names.length] as (string | null)[];
    const weights = replies[names.length + 1] as (string | null)[];
    return names.map((tenant, i) => ({
      tenant,
      held: Number(replies[i]),
      band: bands.get(tenant)!,
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

/** The waiting tenants and their earliest bands, from a lane's tenants set (`ZRANGE … WITHSCORES`). */
export function waitingTenants(reply: readonly string[]): Map<string, 0 | 1 | 2> {
  const tenants = new Map<string, 0 | 1 | 2>();
  for (let i = 0; i + 1 < reply.length; i += 2)
    if (!reply[i]!.startsWith("|")) tenants.set(reply[i]!, Number(reply[i + 1]) as 0 | 1 | 2);
  return tenants;
}

/**
 * A lane's summary from its tenants set (`ZRANGE … WITHSCORES`) and its held count
 * (`ZCARD` of its held jobs): see {@link FairQueue.queueSummary}.
 */
export function summaryOf(lane: string, tenantsReply: readonly string[], heldCount: number): FairLaneSummary {
  let band: 0 | 1 | 2 | null = null;
  for (const tenantBand of waitingTenants(tenantsReply).values())
    if (band === null || tenantBand < band) band = tenantBand;
  const held = band === null ? 0 : Math.max(0, heldCount);
  return {
    lane,
    held,
    band: held > 0 ? band : null,
    since: held > 0 ? laneMember(tenantsReply, "|since") : null,
    served: laneMember(tenantsReply, "|served"),
  };
}

/** The score of one of the lane's own members (`|since`, `|served`, `|floor`) in a tenants-set reply; null when absent. */
export function laneMember(tenantsReply: readonly string[], member: `|${string}`): number | null {
  const at = tenantsReply.indexOf(member);
  return at >= 0 && at % 2 === 0 ? Number(tenantsReply[at + 1]) : null;
}

// Held entries, `<tenant>|<level, 4 digits>|<created at, 13 digits>|<charge>|<job id>`: the
// scripts write (holdFair) and read (releaseFair) them; these read them from TypeScript.

/** The band of a BullMQ level, as `fairBands.lua` has it: 0 interactive, 1 native, 2 batch. */
export function fairBand(level: number): 0 | 1 | 2 {
  if (level <= 100) return 0;
  if (level <= 1000) return 1;
  return 2;
}

/** A held entry, parsed. */
export interface HeldEntry {
  tenant: string;
  level: number;
  createdAt: number;
  /** Its cost ÷ its tenant's weight, as held. */
  charge: number;
  id: string;
}

/** Parses a held entry; null when it is not one. */
export function parseHeldEntry(member: string): HeldEntry | null {
  const parts = member.split("|");
  if (parts.length < 5) return null;
  const [tenant, level, createdAt, charge] = parts as [string, string, string, string];
  return {
    tenant,
    level: Number(level),
    createdAt: Number(createdAt),
    charge: Number(charge),
    id: parts.slice(4).join("|"),
  };
}

const pad = (value: number, width: number) => String(Math.max(0, Math.round(value))).padStart(width, "0");

/** A held entry up to its charge, `<tenant>|<level>|<created at>|`: the jobs of one tenant, level and ms. */
export const heldEntryStem = (tenant: string, level: number, createdAt: number): string =>
  `${tenant}|${pad(level, 4)}|${pad(createdAt, 13)}|`;

/** The lex range (ZLEXCOUNT/ZRANGEBYLEX bounds) of all of one tenant's held entries (`}` sorts after `|`). */
export const tenantEntries = (tenant: string): [string, string] => [`[${tenant}|`, `(${tenant}}`];
