import type { Redis } from "ioredis";
import { FairQueue, type FairQueueOptions, type RedisKeys } from "@corral/shared";
import type { SimJob, SimWorkload } from "./workload.js";

/**
 * A cluster of slots × sequences in virtual time (nothing sleeps). Jobs arrive on their
 * schedule and are held; whenever a sequence is free and jobs are held, the sequence asks
 * the dispatcher for one job and runs it for the job's run time; when it ends, the job is
 * settled. Completions at an instant come first, then arrivals, then the free sequences
 * claim, one release per sequence, as the worker's claim loop does.
 */
export interface Dispatcher {
  hold(jobs: readonly SimJob[], now: number): Promise<void>;
  /** The next job for a free sequence, or null when none is held. */
  release(now: number): Promise<SimJob | null>;
  /** Jobs that ended: their real tokens replace the estimate. */
  settle(jobs: readonly SimJob[], now: number): Promise<void>;
  /** How many jobs are held now (what the store says, for the work-conserving check). */
  held(): Promise<number>;
}

/** One job as it ran. */
export interface RunJob extends SimJob {
  start: number;
  end: number;
  /** `<slot>:<sequence>` */
  sequence: string;
}

export interface SimRun {
  workload: SimWorkload;
  /** Every job, in the order the sequences started them. */
  runs: RunJob[];
  /** Instants when a sequence was left free while the store still held jobs (should be none). */
  idleWhileHeld: { at: number; free: number; held: number }[];
}

export interface RunOptions {
  /** After each instant's claims, asks the store how many jobs it holds if a sequence is free. @defaultValue false */
  checkIdle?: boolean;
}

export async function runCluster(
  workload: SimWorkload,
  dispatcher: Dispatcher,
  options: RunOptions = {},
): Promise<SimRun> {
  const { slots, sequences } = workload.cluster;
  const free: string[] = [];
  for (let s = 0; s < slots; s++) for (let q = 0; q < sequences; q++) free.push(`${s}:${q}`);
  const running: RunJob[] = [];
  const runs: RunJob[] = [];
  const idleWhileHeld: SimRun["idleWhileHeld"] = [];
  const jobs = workload.jobs;
  let next = 0;
  let held = 0;

  while (next < jobs.length || running.length > 0) {
    const nextArrival = next < jobs.length ? jobs[next]!.arrival : Infinity;
    const nextEnd = running.reduce((min, job) => Math.min(min, job.end), Infinity);
    const now = Math.min(nextArrival, nextEnd);

    const ended = running.filter((job) => job.end === now);
    if (ended.length > 0) {
      for (const job of ended) {
        running.splice(running.indexOf(job), 1);
        free.push(job.sequence);
      }
      free.sort(bySequence);
      await dispatcher.settle(ended, now);
    }

    const arrived: SimJob[] = [];
    while (next < jobs.length && jobs[next]!.arrival === now) arrived.push(jobs[next++]!);
    if (arrived.length > 0) {
      await dispatcher.hold(arrived, now);
      held += arrived.length;
    }

    while (free.length > 0 && held > 0) {
      const job = await dispatcher.release(now);
      if (!job) break;
      held--;
      const run: RunJob = { ...job, start: now, end: now + job.duration, sequence: free.shift()! };
      running.push(run);
      runs.push(run);
    }
    if (options.checkIdle && free.length > 0) {
      const stored = await dispatcher.held();
      if (stored > 0) idleWhileHeld.push({ at: now, free: free.length, held: stored });
    }
    if (held > 0 && free.length > 0 && !options.checkIdle) idleWhileHeld.push({ at: now, free: free.length, held });
  }
  if (runs.length !== jobs.length) throw new Error(`the simulation ran ${runs.length} of ${jobs.length} jobs`);
  return { workload, runs, idleWhileHeld };
}

const bySequence = (a: string, b: string): number => {
  const [as, aq] = a.split(":").map(Number);
  const [bs, bq] = b.split(":").map(Number);
  return as! - bs! || aq! - bq!;
};

/**
 * The fair claim under test: jobs are held with the real {@link FairQueue.hold} (their ids
 * added to the lane's BullMQ delayed set first, as a BullMQ add with the hold delay
 * would), each free sequence calls the real {@link FairQueue.release} and pops the job it
 * released from the lane's wait list, and ended jobs are settled with
 * {@link FairQueue.settle}, one call per instant.
 */
export class FairClaimDispatcher implements Dispatcher {
  readonly fair: FairQueue;
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #lane: string;
  readonly #weights: ReadonlyMap<string, number>;
  readonly #byId = new Map<string, SimJob>();

  constructor(
    redis: Redis,
    keys: RedisKeys,
    workload: SimWorkload,
    options: FairQueueOptions & { lane?: string } = {},
  ) {
    this.#redis = redis;
    this.#keys = keys;
    this.#lane = options.lane ?? "lane-sim";
    this.#weights = workload.weights;
    this.fair = new FairQueue(redis, keys, options);
  }

  get #delayed(): string {
    return `${this.#keys.prefix}:${this.#lane}:delayed`;
  }

  get #wait(): string {
    return `${this.#keys.prefix}:${this.#lane}:wait`;
  }

  async hold(jobs: readonly SimJob[], now: number): Promise<void> {
    const pipeline = this.#redis.pipeline();
    for (const job of jobs) {
      this.#byId.set(job.id, job);
      pipeline.zadd(this.#delayed, 1e15, job.id);
    }
    await pipeline.exec();
    const count = await this.fair.hold(
      this.#lane,
      jobs.map((job) => ({
        id: job.id,
        tenant: job.tenant,
        weight: this.#weights.get(job.tenant) ?? 1,
        priority: job.priority,
        createdAt: Math.round(job.arrival),
        cost: job.cost,
      })),
      Math.round(now),
    );
    if (count !== jobs.length) throw new Error(`holdFair held ${count} of ${jobs.length} jobs`);
  }

  async release(now: number): Promise<SimJob | null> {
    const [released] = await this.fair.release(this.#lane, 1, Math.round(now));
    if (!released) return null;
    // The slot takes from the wait list's far end, as BullMQ's moveToActive does.
    const taken = await this.#redis.rpop(this.#wait);
    if (taken !== released.id) throw new Error(`released ${released.id} but the wait list gave ${taken}`);
    const job = this.#byId.get(released.id);
    if (!job) throw new Error(`released ${released.id}, which was never held`);
    return job;
  }

  async settle(jobs: readonly SimJob[]): Promise<void> {
    const corrections = new Map<string, number>();
    for (const job of jobs) corrections.set(job.tenant, (corrections.get(job.tenant) ?? 0) + job.tokens - job.cost);
    await this.fair.settle(corrections);
  }

  async held(): Promise<number> {
    const [summary] = await this.fair.summaries([this.#lane]);
    return summary?.held ?? 0;
  }
}

/** Runs `workload` through the real fair claim on Redis under `keys`. */
export function simulateFairClaim(
  redis: Redis,
  keys: RedisKeys,
  workload: SimWorkload,
  options: FairQueueOptions & RunOptions = {},
): Promise<SimRun> {
  return runCluster(workload, new FairClaimDispatcher(redis, keys, workload, options), options);
}
