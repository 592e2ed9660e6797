import { bullPriority } from "@corral/shared";

/**
 * What a fairness simulation runs: a cluster of slots × sequences, tenants with weights,
 * and every job with its arrival, estimated cost, real tokens and run time fixed in
 * advance (seeded), so the fair-claim simulation and the ideal scheduler run exactly the
 * same jobs. Times are virtual milliseconds from 0.
 */

export interface SimCluster {
  slots: number;
  sequences: number;
}

export interface SimJob {
  id: string;
  tenant: string;
  /** When it is submitted (ms). */
  arrival: number;
  /** BullMQ level (bullPriority): native jobs unless a test says otherwise. */
  priority: number;
  /** Estimated cost charged at release: prompt + max tokens. */
  cost: number;
  /** Tokens it really uses (prompt + generated), settled when it ends. */
  tokens: number;
  /** How long it runs once a sequence takes it (ms). */
  duration: number;
}

export interface SimWorkload {
  cluster: SimCluster;
  /** Each tenant's weight (share); a tenant not named has weight 1. */
  weights: ReadonlyMap<string, number>;
  /** Sorted by arrival. */
  jobs: readonly SimJob[];
}

/** What one job is estimated to cost, what it really uses and how long it runs, drawn from a seeded generator. */
export interface JobShape {
  draw(random: () => number): { cost: number; tokens: number; durationMs: number };
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The jobs: a 16-token prompt and `max_tokens` 64 on stories260K (estimated cost
 * 80). Most run to `max_tokens`, a fifth end their story early (16-64 tokens); the run
 * time is proportional to the steps a sequence goes through (the prompt counts as 8),
 * ±5%, scaled so a job takes `meanMs` on average: 100 ms, so one slot of 4 sequences
 * serves 40 jobs/s, as the issue measured.
 */
export function storyJobs(meanMs = 100): JobShape {
  const prompt = 16;
  const maxTokens = 64;
  const meanSteps = 0.8 * 64 + 0.2 * 40 + 8;
  return {
    draw(random) {
      const generated = random() < 0.8 ? maxTokens : 16 + Math.floor(random() * 49);
      const jitter = 0.95 + 0.1 * random();
      return {
        cost: prompt + maxTokens,
        tokens: prompt + generated,
        durationMs: ((generated + 8) / meanSteps) * meanMs * jitter,
      };
    },
  };
}

/**
 * Jobs of mixed sizes: a prompt of 8-200 tokens and `max_tokens` of 16-256, each using
 * 30-100% of its max; the run time is `msPerToken` per generated token plus a tenth of
 * that per prompt token. The estimate (prompt + max) is often far above what a job uses,
 * so the counters only stay fair if settling corrects them.
 */
export function mixedJobs(msPerToken = 1.5): JobShape {
  return {
    draw(random) {
      const prompt = 8 + Math.floor(random() * 193);
      const maxTokens = 16 + Math.floor(random() * 241);
      const generated = Math.max(1, Math.round(maxTokens * (0.3 + 0.7 * random())));
      return {
        cost: prompt + maxTokens,
        tokens: prompt + generated,
        durationMs: (generated + prompt / 10) * msPerToken,
      };
    },
  };
}

/** One tenant's arrivals: their times (ms) and the shape of its jobs. */
export interface Arrivals {
  tenant: string;
  times: readonly number[];
  shape: JobShape;
  /** @defaultValue native jobs (bullPriority("native")) */
  priority?: number;
}

/** `count` jobs at once at `at` ms. */
export const burst = (count: number, at: number): number[] => Array.from({ length: count }, () => at);

/** `count` jobs spread evenly over `overMs` from `from` ms (the first at `from`). */
export const spread = (count: number, from: number, overMs: number): number[] =>
  Array.from({ length: count }, (_, i) => from + (i * overMs) / count);

/** Builds the jobs of every tenant's arrivals, drawing sizes and run times from one seeded generator. */
export function buildWorkload(
  cluster: SimCluster,
  arrivals: readonly Arrivals[],
  seed: number,
  weights: ReadonlyMap<string, number> = new Map(),
): SimWorkload {
  const random = seededRandom(seed);
  const jobs: SimJob[] = [];
  for (const { tenant, times, shape, priority } of arrivals) {
    for (const [i, arrival] of times.entries()) {
      const { cost, tokens, durationMs } = shape.draw(random);
      jobs.push({
        id: `${tenant}-${String(i).padStart(5, "0")}`,
        tenant,
        arrival,
        priority: priority ?? bullPriority("native"),
        cost,
        tokens,
        duration: durationMs,
      });
    }
  }
  jobs.sort((a, b) => a.arrival - b.arrival || (a.id < b.id ? -1 : 1));
  return { cluster, weights, jobs };
}

/** The workload with only some tenants' jobs (the same jobs, same run times): e.g. B alone on an idle cluster. */
export function onlyTenants(workload: SimWorkload, tenants: readonly string[]): SimWorkload {
  return { ...workload, jobs: workload.jobs.filter((job) => tenants.includes(job.tenant)) };
}
