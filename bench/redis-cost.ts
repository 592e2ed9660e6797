/**
 * 3. Redis commands per completed job (INFO commandstats after CONFIG RESETSTAT), Corral
 * against raw BullMQ, broken down by command. Everything between the reset and the last
 * result counts: submit, claim, run, result, the client learning of it, and whatever the
 * processes do in the background meanwhile (heartbeats, stalled checks, polling).
 * Commands that Lua scripts run count one each (Redis counts them), as do the scripts.
 */
import { BullBaseline } from "./lib/bullmq-baseline.js";
import { type CommandCounts, perJob, totalCommands } from "./lib/bench-redis.js";
import { CorralStack, STORIES } from "./lib/corral-stack.js";
import { runCorralJobs } from "./lib/corral-jobs.js";
import { JsonClient } from "./lib/http-client.js";
import { storyPrompts } from "./lib/prompts.js";
import { median, ratio, round } from "./lib/stats.js";
import { runAlone } from "./lib/run-alone.js";
import type { BenchOptions, BenchResult } from "./lib/types.js";

interface Workload {
  name: string;
  maxTokens: number;
}

const WORKLOADS: Workload[] = [
  { name: "tokens_64", maxTokens: 64 },
  { name: "tokens_1", maxTokens: 1 },
];

interface Measured {
  perJob: number;
  counts: CommandCounts;
}

export async function benchRedisCost(o: BenchOptions): Promise<BenchResult> {
  const jobs = o.quick ? 8 : 200;
  const sequences = 4;
  const prompts = storyPrompts(jobs);
  const warm = storyPrompts(o.quick ? 2 : 10, 30_000);
  const corral: Record<string, Measured[]> = {};
  const baseline: Record<string, Measured[]> = {};

  // One system at a time, so the other's background traffic is not counted.
  const stack = await CorralStack.start({
    redisUrl: o.redisUrl,
    modelsDir: o.modelsDir,
    prefix: "bench-redis",
    label: "redis-cost",
    logDir: o.logDir,
    profileDir: o.profileDir,
    slots: 1,
    sequences,
  });
  const client = new JsonClient(stack.url);
  try {
    await runCorralJobs(
      client,
      warm.map((prompt) => ({ model: STORIES, prompt, max_tokens: 1, temperature: 0 })),
    );
    for (const workload of WORKLOADS) {
      corral[workload.name] = [];
      for (let run = 0; run < o.runs; run++) {
        await o.redis.resetStats();
        await runCorralJobs(
          client,
          prompts.map((prompt) => ({ model: STORIES, prompt, max_tokens: workload.maxTokens, temperature: 0 })),
        );
        const counts = await o.redis.commandCounts();
        corral[workload.name]!.push({ perJob: totalCommands(counts) / jobs, counts });
      }
      o.log(
        `  redis ${workload.name}: corral ${round(median(corral[workload.name]!.map((m) => m.perJob)), 1)} commands/job`,
      );
    }
  } finally {
    client.close();
    await stack.close();
  }

  const bull = await BullBaseline.start({
    redisUrl: o.redisUrl,
    modelsDir: o.modelsDir,
    prefix: "bench-redis-bull",
    label: "redis-cost",
    logDir: o.logDir,
    sequences,
  });
  try {
    await bull.runJobs(warm.map((prompt) => ({ prompt, max_tokens: 1 })));
    for (const workload of WORKLOADS) {
      baseline[workload.name] = [];
      for (let run = 0; run < o.runs; run++) {
        await o.redis.resetStats();
        await bull.runJobs(prompts.map((prompt) => ({ prompt, max_tokens: workload.maxTokens })));
        const counts = await o.redis.commandCounts();
        baseline[workload.name]!.push({ perJob: totalCommands(counts) / jobs, counts });
      }
      o.log(
        `  redis ${workload.name}: bullmq ${round(median(baseline[workload.name]!.map((m) => m.perJob)), 1)} commands/job`,
      );
    }
  } finally {
    await bull.close();
  }

  const summary = (list: Measured[]) => {
    const typical = [...list].sort((a, b) => a.perJob - b.perJob)[Math.floor(list.length / 2)]!;
    return { per_job: round(typical.perJob, 1), by_command: perJob(typical.counts, jobs) };
  };
  const workloads = Object.fromEntries(
    WORKLOADS.map((w) => {
      const c = summary(corral[w.name]!);
      const b = summary(baseline[w.name]!);
      return [
        w.name,
        {
          corral: c.per_job,
          baseline: b.per_job,
          ratio: ratio(c.per_job, b.per_job, 2),
          corral_by_command: c.by_command,
          baseline_by_command: b.by_command,
        },
      ];
    }),
  );
  const primary = workloads.tokens_64!;
  return {
    corral: primary.corral,
    baseline: primary.baseline,
    ratio: primary.ratio,
    unit: "commands/job (64-token jobs)",
    target: "ratio <= 1.2 (#21; 1.5 before)",
    met: primary.ratio === null ? null : primary.ratio <= 1.2,
    config: { jobs, slots: 1, sequences, submit: "burst, 16 in flight", workloads: WORKLOADS },
    ...workloads,
  };
}

runAlone(import.meta.url, "redis_cost");
