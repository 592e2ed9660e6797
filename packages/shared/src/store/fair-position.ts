import type { Redis } from "ioredis";
import type { RedisKeys } from "../keys.js";
import { fairBand, heldEntryStem, laneMember, parseHeldEntry, tenantEntries, waitingTenants } from "./fair-queue.js";

/**
 * A queued job's place on its lane under fair claim, and when it should start: read from
 * the lane's held jobs and waiting tenants ({@link RedisKeys.fairJobs},
 * {@link RedisKeys.fairTenants}), the tenants' counters, and the lane's BullMQ completed
 * and failed sets. Reads only, in two pipelined round trips (more only to find a job
 * among many created in the same ms); nothing here changes what is released when.
 *
 * Both figures are estimates. The position assumes no new job arrives ahead of this one
 * (an interactive request, or a tenant that starts waiting with credit, can still
 * overtake it) and that the jobs ahead charge what their tenant's next job does. The start
 * time assumes the lane keeps completing jobs at its recent rate. docs/architecture.md
 * ("Queue position") says how each is counted.
 */

/** The job whose place is asked for: what its held entry is made of. */
export interface FairPositionJob {
  id: string;
  tenant: string;
  lane: string;
  /** Its BullMQ level ({@link bullPriority}), as it was held. */
  level: number;
  /** Its creation time (ms), as it was held. */
  createdAt: number;
}

export interface FairPositionOptions {
  /** @defaultValue Date.now() */
  now?: number;
  /** How far back the lane's completions are counted for its rate (ms). @defaultValue {@link RATE_WINDOW_MS} */
  rateWindowMs?: number;
}

/** A queued job's estimated place and start. */
export interface FairPosition {
  /** 1 for the next job the lane starts, 2 for the one after it, and so on. */
  position: number;
  /** Jobs that finished on the lane per second lately; null when none did in the window. */
  ratePerSecond: number | null;
  /** now + position ÷ rate (ms); null when no rate was measured. */
  estimatedStartAt: number | null;
  /** `held`: in its tenant's fair list; `released`: in the lane's wait list, about to be taken. */
  state: "held" | "released";
}

/** Completions counted for a lane's rate: the last minute. */
export const RATE_WINDOW_MS = 60_000;
/** The rate is counted from when the lane started waiting once this many jobs finished since. */
export const MIN_SINCE_JOBS = 3;
/** The shortest span a rate is counted over (ms), so that one finish a moment ago is not a huge rate. */
export const MIN_SPAN_MS = 1000;

/** Entries read at a time while looking for a job's own among those created in the same ms. */
const PAGE = 500;

/** The first level of each band as held (4 digits), and the end of a tenant's entries. */
const BAND_START = ["0000", "0101", "1001"] as const;

/** The lex range of one tenant's held entries in a band. */
function bandRange(tenant: string, band: 0 | 1 | 2): [string, string] {
  const next = band === 2 ? null : BAND_START[band + 1];
  return [`[${tenant}|${BAND_START[band]}`, next === null ? tenantEntries(tenant)[1] : `(${tenant}|${next}`];
}

/** One other tenant waiting on the lane, as {@link jobsAheadOf} counts it. */
export interface OtherTenant {
  counter: number;
  /** Its held jobs in bands before the job's. */
  earlier: number;
  /** Its held jobs in the job's band. */
  same: number;
  /** What its next job in the job's band will charge it (its cost ÷ its weight, weighted tokens). */
  charge: number;
  /** Whether that job is older than the asked one (a tie on counters goes to the older head). */
  older: boolean;
}

/** The asked job's tenant and its own jobs ahead. */
export interface OwnTenant {
  counter: number;
  /** Its held jobs that go before this one: lower level, or same level and older. */
  rank: number;
  /** What this job will charge it (weighted tokens); its jobs ahead are taken to charge the same. */
  charge: number;
}

/**
 * How many of another tenant's held jobs fair claim releases before the asked job, under
 * weighted VTC: all of its jobs in earlier bands, then, in the job's band, those it is
 * picked for while its counter is below the one the asked job's tenant will have when the
 * job is its next (c_T + rank × charge_T), each pick adding its charge (cost_U ÷ w_U) to
 * its counter. Capped at what it holds in that band.
 */
export function jobsAheadOf(own: OwnTenant, other: OtherTenant): number {
  const target = own.counter + own.rank * own.charge;
  const step = Math.max(1e-4, other.charge);
  // Its counter once its earlier-band jobs have been charged (taken to charge what its next one does).
  const start = other.counter + other.earlier * step;
  const gap = target - start;
  const epsilon = 1e-6 * Math.max(1, Math.abs(target));
  let same: number;
  if (gap < -epsilon) same = 0;
  else if (Math.abs(gap) <= epsilon) same = other.older ? 1 : 0;
  else {
    // Picks k = 0, 1, … with start + k·step < target; one more when it ties and is older.
    const below = Math.ceil(gap / step - 1e-9);
    const ties = Math.abs(start + below * step - target) <= epsilon && other.older ? 1 : 0;
    same = below + ties;
  }
  return other.earlier + Math.min(other.same, Math.max(0, same));
}

/**
 * The job's estimated place on its lane and start time; null when it is neither held for
 * fair claim nor in the lane's wait list (running, final, or queued some other way: a
 * retry's backoff, a parked job).
 */
export async function readFairPosition(
  redis: Redis,
  keys: RedisKeys,
  job: FairPositionJob,
  options: FairPositionOptions = {},
): Promise<FairPosition | null> {
  const now = options.now ?? Date.now();
  const windowMs = options.rateWindowMs ?? RATE_WINDOW_MS;
  const jobsKey = keys.fairJobs(job.lane);
  const bull = (type: string) => `${keys.prefix}:${job.lane}:${type}`;
  const stem = heldEntryStem(job.tenant, job.level, job.createdAt);
  const stemEnd = `(${stem.slice(0, -1)}}`;

  // Round trip 1: the job's own entry (found by its level and creation time), the lane's
  // waiting tenants (and when it started waiting), its wait list.
  const first = await redis
    .pipeline()
    .zrangebylex(jobsKey, `[${stem}`, stemEnd, "LIMIT", 0, PAGE)
    .zrange(keys.fairTenants(job.lane), 0, -1, "WITHSCORES")
    .lpos(bull("wait"), job.id)
    .llen(bull("wait"))
    .exec();
  const [candidates, tenantsReply, waitIndex, waitLength] = replies(first, 4) as [
    string[],
    string[],
    number | null,
    number,
  ];
  const ending = `|${job.id}`;
  let member = candidates.find((candidate) => candidate.endsWith(ending)) ?? null;
  // Jobs queued in one call (a batch's lines) share a creation time: page through them.
  for (let offset = PAGE, page = candidates; member === null && page.length === PAGE; offset += PAGE) {
    page = await redis.zrangebylex(jobsKey, `[${stem}`, stemEnd, "LIMIT", offset, PAGE);
    member = page.find((candidate) => candidate.endsWith(ending)) ?? null;
  }
  const entry = member === null ? null : parseHeldEntry(member);

  const sinceScore = laneMember(tenantsReply, "|since") ?? Number.NaN;
  const since = Number.isFinite(sinceScore) && sinceScore > 0 && sinceScore < now ? sinceScore : null;

  if (member === null || entry === null) {
    if (waitIndex === null) return null;
    // BullMQ takes from the right of the wait list; fair claim releases to its left.
    const position = waitLength - waitIndex;
    const rate = await completionRate(redis, bull, since, now, windowMs);
    return estimate(position, rate, now, "released");
  }

  // Round trip 2: the job's rank among its tenant's entries; each other tenant's held jobs
  // in earlier bands and in the job's band, with its next job there; counters; the rate.
  const band = fairBand(entry.level);
  const others = [...waitingTenants(tenantsReply).keys()].filter((tenant) => tenant !== job.tenant);
  const pipeline = redis.pipeline();
  pipeline.zlexcount(jobsKey, tenantEntries(job.tenant)[0], `(${member}`);
  pipeline.hmget(keys.fairCounters, job.tenant, ...others);
  for (const tenant of others) {
    const [from, to] = bandRange(tenant, band);
    pipeline.zlexcount(jobsKey, tenantEntries(tenant)[0], `(${tenant}|${BAND_START[band]}`);
    pipeline.zlexcount(jobsKey, from, to);
    pipeline.zrangebylex(jobsKey, from, to, "LIMIT", 0, 1);
  }
  const [reply, rate] = await Promise.all([pipeline.exec(), completionRate(redis, bull, since, now, windowMs)]);
  const second = replies(reply, 2 + 3 * others.length);
  const rank = second[0] as number;
  const counters = second[1] as (string | null)[];

  const counterOf = (i: number) => {
    const n = Number(counters[i] ?? Number.NaN);
    return Number.isFinite(n) ? n : 0;
  };
  const own: OwnTenant = { counter: counterOf(0), rank, charge: entry.charge };
  let ahead = rank;
  others.forEach((_, i) => {
    const at = 2 + 3 * i;
    const head = parseHeldEntry((second[at + 2] as string[])[0] ?? "");
    ahead += jobsAheadOf(own, {
      counter: counterOf(i + 1),
      earlier: second[at] as number,
      same: second[at + 1] as number,
      charge: head?.charge ?? entry.charge,
      older: head !== null && head.createdAt < entry.createdAt,
    });
  });
  return estimate(ahead + 1, rate, now, "held");
}

/**
 * Jobs per second a lane finished over the last `rateWindowMs` (counted from its oldest
 * finish in that window), as {@link readFairPosition} measures it for a lane that has not
 * been waiting long; null when none finished in the window. `GET /v1/queue` divides a
 * lane's backlog by it for the expected wait.
 */
export async function readLaneRate(
  redis: Redis,
  keys: RedisKeys,
  lane: string,
  options: FairPositionOptions = {},
): Promise<number | null> {
  const bull = (type: string) => `${keys.prefix}:${lane}:${type}`;
  return completionRate(redis, bull, null, options.now ?? Date.now(), options.rateWindowMs ?? RATE_WINDOW_MS);
}

/**
 * Jobs per second the lane finished lately (BullMQ's completed and failed sets, scored by
 * finish time): since the lane started waiting, when at least {@link MIN_SINCE_JOBS}
 * finished since (its sequences have all been busy since); otherwise over the window,
 * from its oldest finish in the window (so idle time before it does not count). Null
 * when none finished in the window.
 */
async function completionRate(
  redis: Redis,
  bull: (type: string) => string,
  since: number | null,
  now: number,
  windowMs: number,
): Promise<number | null> {
  const from = now - windowMs;
  const useSince = since !== null && since > from;
  const pipeline = redis.pipeline();
  for (const set of ["completed", "failed"]) {
    pipeline.zcount(bull(set), `(${from}`, now);
    pipeline.zrangebyscore(bull(set), `(${from}`, now, "WITHSCORES", "LIMIT", 0, 1);
    if (useSince) pipeline.zcount(bull(set), `(${since}`, now);
  }
  const per = useSince ? 3 : 2;
  const reply = replies(await pipeline.exec(), 2 * per);
  let inWindow = 0;
  let sinceCount = 0;
  let oldest = Number.POSITIVE_INFINITY;
  for (let set = 0; set < 2; set++) {
    inWindow += reply[set * per] as number;
    const first = reply[set * per + 1] as string[];
    if (first.length === 2) oldest = Math.min(oldest, Number(first[1]));
    if (useSince) sinceCount += reply[set * per + 2] as number;
  }
  if (useSince && sinceCount >= MIN_SINCE_JOBS) return sinceCount / ((now - since) / 1000);
  if (inWindow === 0 || !Number.isFinite(oldest)) return null;
  return inWindow / (Math.max(MIN_SPAN_MS, now - oldest) / 1000);
}

function estimate(position: number, rate: number | null, now: number, state: FairPosition["state"]): FairPosition {
  return {
    position,
    ratePerSecond: rate,
    estimatedStartAt: rate === null ? null : Math.round(now + (position / rate) * 1000),
    state,
  };
}

/** A pipeline's replies, or its first error. */
function replies(result: [Error | null, unknown][] | null, count: number): unknown[] {
  if (result === null || result.length !== count) throw new Error("fair position: a pipeline reply is missing");
  return result.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}
