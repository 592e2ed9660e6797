/**
 * 9. The ceiling of one Redis: tiny jobs (max_tokens 1 on stories260K, the dispatch
 * benchmark's jobs: submit, claim, a one-token run, complete, the client learning of it)
 * offered open-loop at rising rates on the bench Redis until, at two rates in a row, the
 * achieved rate falls below 90% of the offered one or the result p99 passes 1 s. At each
 * rate: the achieved jobs/s; the Redis main thread's CPU (INFO cpu deltas) and every Corral process's (from
 * /proc) as a fraction of one core; the machine's busy cores (/proc/stat); Redis commands
 * and Redis CPU µs per job; and a PING round trip sampled every 50 ms on a connection of
 * its own (what any command waits for in Redis's queue). Whichever single-threaded process
 * sits nearest a full core at the first of those two rates is what hit first (or the
 * machine, when all its cores were busy). From Redis's CPU
 * per job it also derives what one Redis core could carry were nothing else in the way:
 * an extrapolation, reported as such (`redis_only_estimate_jobs_per_s`).
 */
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { Redis } from "ioredis";
import { totalCommands } from "./lib/bench-redis.js";
import { CorralStack, STORIES } from "./lib/corral-stack.js";
import { runCorralJobs } from "./lib/corral-jobs.js";
import { JsonClient } from "./lib/http-client.js";
import { cpuSnapshot } from "./lib/process-cpu.js";
import { storyPrompts } from "./lib/prompts.js";
import { percentile, round } from "./lib/stats.js";
import { runAlone } from "./lib/run-alone.js";
import type { BenchOptions, BenchResult } from "./lib/types.js";

/** Redis's own CPU seconds, from INFO cpu: the main thread (where commands run) and the whole process. */
function redisCpu(info: string): { main: number; all: number } {
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? Number.NaN);
  const main = field("used_cpu_user_main_thread") + field("used_cpu_sys_main_thread");
  const all = field("used_cpu_user") + field("used_cpu_sys");
  return { main: Number.isFinite(main) ? main : all, all };
}

/** Busy and total jiffies of the whole machine, from /proc/stat's first line. */
function machineJiffies(): { busy: number; total: number } | null {
  try {
    const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((sum, v) => sum + v, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

interface RateRun {
  offered_per_s: number;
  achieved_per_s: number;
  jobs: number;
  claim_p50_ms: number | null;
  claim_p99_ms: number | null;
  result_p99_ms: number | null;
  /** Fractions of one core over the run. */
  cores: Record<string, number | null>;
  machine_busy_cores: number | null;
  /** The 1-minute load average at the end of the run (other work on the machine shows here). */
  load_average: number;
  redis_commands_per_job: number | null;
  redis_cpu_us_per_job: number | null;
  ping_p50_ms: number | null;
  ping_p99_ms: number | null;
  saturated: boolean;
}

export async function benchRedisCeiling(o: BenchOptions): Promise<BenchResult> {
  const rates = o.quick ? [20, 40] : [50, 100, 150, 200, 300, 400, 600, 800];
  const seconds = o.quick ? 0.5 : 6;
  const sequences = 8;
  const stack = await CorralStack.start({
    redisUrl: o.redisUrl,
    modelsDir: o.modelsDir,
    prefix: "bench-ceiling",
    label: "ceiling",
    logDir: o.logDir,
    profileDir: o.profileDir,
    slots: 1,
    sequences,
  });
  const client = new JsonClient(stack.url, 256);
  const admin = new Redis(o.redisUrl, { maxRetriesPerRequest: 1, connectionName: "bench-ceiling-admin" });
  const pinger = new Redis(o.redisUrl, { maxRetriesPerRequest: 1, connectionName: "bench-ceiling-ping" });
  const pids = {
    client: { pid: process.pid },
    scheduler: { pid: stack.schedulerPid },
    worker: { pid: stack.workerPid, tree: true },
  };
  const runs: RateRun[] = [];
  try {
    // Warm-up, as in dispatch_latency (V8 optimises the submit and claim paths).
    const warm = storyPrompts(o.quick ? 4 : 1500, 20_000);
    for (let at = 0; at < warm.length; at += 250)
      await runCorralJobs(
        client,
        warm.slice(at, at + 250).map((prompt) => ({ model: STORIES, prompt, max_tokens: 1, temperature: 0 })),
        { submitAndWait: true },
      );
    for (const rate of rates) {
      const prompts = storyPrompts(Math.max(4, Math.round(rate * seconds)));
      await o.redis.resetStats();
      const pings: number[] = [];
      let pinging = true;
      const sampler = (async () => {
        while (pinging) {
          const t0 = performance.now();
          await pinger.ping();
          pings.push(performance.now() - t0);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })();
      const cpu0 = cpuSnapshot(pids);
      const redis0 = redisCpu(await admin.info("cpu"));
      const machine0 = machineJiffies();
      const t0 = performance.now();
      const result = await runCorralJobs(
        client,
        prompts.map((prompt) => ({ model: STORIES, prompt, max_tokens: 1, temperature: 0 })),
        { ratePerSecond: rate, submitAndWait: true, waitSeconds: 60 },
      );
      const wallS = (performance.now() - t0) / 1000;
      const cpu1 = cpuSnapshot(pids);
      const redis1 = redisCpu(await admin.info("cpu"));
      const machine1 = machineJiffies();
      pinging = false;
      await sampler;
      const commands = totalCommands(await o.redis.commandCounts());
      const jobs = result.jobs.length;
      const claim = result.jobs.map((job) => (job.record.started_at ?? job.resultAt) - job.submitAt);
      const total = result.jobs.map((job) => job.resultAt - job.submitAt);
      const cores: Record<string, number | null> = { redis_main: round((redis1.main - redis0.main) / wallS, 3) };
      for (const name of Object.keys(pids)) {
        const a = cpu0[name];
        const b = cpu1[name];
        cores[name] =
          a === null || b === null || a === undefined || b === undefined ? null : round((b - a) / 1e6 / wallS, 3);
      }
      const achieved = jobs / (result.wallMs / 1000);
      const resultP99 = percentile(total, 99);
      const run: RateRun = {
        offered_per_s: rate,
        achieved_per_s: round(achieved, 1)!,
        jobs,
        claim_p50_ms: round(percentile(claim, 50), 1),
        claim_p99_ms: round(percentile(claim, 99), 1),
        result_p99_ms: round(resultP99, 1),
        cores,
        machine_busy_cores:
          machine0 && machine1
            ? round(((machine1.busy - machine0.busy) / (machine1.total - machine0.total)) * machineCores(), 2)
            : null,
        load_average: round(loadavg()[0]!, 2)!,
        redis_commands_per_job: round(commands / jobs, 1),
        redis_cpu_us_per_job: round(((redis1.main - redis0.main) * 1e6) / jobs, 0),
        ping_p50_ms: round(percentile(pings, 50), 2),
        ping_p99_ms: round(percentile(pings, 99), 2),
        saturated: achieved < 0.9 * rate || resultP99 > 1000,
      };
      runs.push(run);
      o.log(
        `  ceiling ${rate}/s: achieved ${run.achieved_per_s}/s, result p99 ${run.result_p99_ms} ms, ` +
          `cores ${Object.entries(cores)
            .map(([name, v]) => `${name} ${v}`)
            .join(", ")}, machine ${run.machine_busy_cores} busy, ping p99 ${run.ping_p99_ms} ms` +
          (run.saturated ? " (saturated)" : ""),
      );
      // Two saturated rates in a row end it: on a shared machine one rate can drown in
      // someone else's burst, and the next one tells.
      if (run.saturated && runs.at(-2)?.saturated) break;
    }
  } finally {
    client.close();
    admin.disconnect();
    pinger.disconnect();
    await stack.close();
  }
  const best = runs.reduce((a, b) => (b.achieved_per_s > a.achieved_per_s ? b : a), runs[0]!);
  // The first rate of the saturated pair that ended the run (null: it never saturated).
  const firstSaturated = runs.at(-1)?.saturated && runs.at(-2)?.saturated ? runs.at(-2)! : null;
  const at = firstSaturated ?? runs.at(-1)!;
  // All cores busy (Corral's processes, Redis, the client and anything else running): the
  // machine ran out before any one process reached a full core.
  const machineSaturated = at.machine_busy_cores !== null && at.machine_busy_cores >= 0.95 * machineCores();
  const [bottleneck, bottleneckCores] = Object.entries(at.cores).reduce(
    (a, b) => ((b[1] ?? -1) > (a[1] ?? -1) ? b : a),
    ["none", null] as [string, number | null],
  );
  // Redis's CPU per job at the highest achieved rate: there its background work (heartbeats,
  // stalled checks, the PING sampler) is spread over the most jobs.
  const redisUsPerJob = best.redis_cpu_us_per_job ?? Number.NaN;
  return {
    corral: best.achieved_per_s,
    baseline: null,
    ratio: null,
    unit: "jobs/s at saturation (max_tokens 1, one Redis, this machine)",
    target: "none (report)",
    met: null,
    saturated: firstSaturated !== null,
    saturated_at_offered_per_s: firstSaturated?.offered_per_s ?? null,
    first_to_saturate: {
      resource: machineSaturated ? "machine CPU (all cores busy)" : `${bottleneck} CPU`,
      busiest_process: bottleneck,
      busiest_process_cores: bottleneckCores,
      redis_main_cores: at.cores.redis_main ?? null,
    },
    machine_busy_cores_at_saturation: at.machine_busy_cores,
    redis_cpu_us_per_job: round(redisUsPerJob, 0),
    redis_only_estimate_jobs_per_s: redisUsPerJob > 0 ? round(1e6 / redisUsPerJob, -1) : null,
    redis_only_estimate_is:
      "1 s / the Redis main thread's CPU per job at the highest achieved rate: an extrapolation, not a measurement",
    config: {
      slots: 1,
      sequences,
      max_tokens: 1,
      client: "POST /v1/jobs?wait=60, open loop",
      seconds_per_rate: seconds,
      rates,
    },
    rates: runs,
  };
}

function machineCores(): number {
  try {
    return readFileSync("/proc/stat", "utf8")
      .split("\n")
      .filter((line) => /^cpu\d+ /.test(line)).length;
  } catch {
    return 1;
  }
}

runAlone(import.meta.url, "redis_ceiling");
