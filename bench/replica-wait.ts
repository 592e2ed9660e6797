/**
 * 8. The cost of acknowledged writes waiting for a replica (`CORRAL_REDIS_WAIT_REPLICAS=1`):
 * a master and one replica (`replicaof`) on loopback ports, started for this benchmark, and
 * two schedulers on the master, one with WAIT 1 and one without, measured in the same run
 * in alternating rounds. No worker runs: the jobs stay queued, so this is the submit path
 * alone (as in http_submit). Per round and scheduler: sequential submits (one at a time,
 * timed here with hrtime: the latency a lone client sees) and 10 concurrent connections
 * with autocannon (throughput). WAIT calls per submit are read from the master's
 * INFO commandstats, so a run where WAIT did not happen cannot pass for a cheap one.
 */
import autocannon from "autocannon";
import { Redis } from "ioredis";
import { startReplicated } from "../test/support/redis-topologies.js";
import { parseCommandStats } from "./lib/bench-redis.js";
import { CorralStack, STORIES } from "./lib/corral-stack.js";
import { JsonClient } from "./lib/http-client.js";
import { cpuPerJob, cpuSnapshot } from "./lib/process-cpu.js";
import { median, percentile, round } from "./lib/stats.js";
import { runAlone } from "./lib/run-alone.js";
import type { BenchOptions, BenchResult } from "./lib/types.js";

const BODY = { model: STORIES, prompt: "Once upon a time", max_tokens: 16, temperature: 0 };

interface Sequential {
  p50_ms: number;
  p99_ms: number;
  per_s: number;
}

interface Concurrent {
  /** Submits answered 202. */
  ok: number;
  per_s: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  scheduler_cpu_us: number;
  redis_cpu_us: number;
}

async function sequential(client: JsonClient, count: number): Promise<Sequential> {
  const took: number[] = [];
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const response = await client.post("/v1/jobs", BODY);
    took.push(performance.now() - t0);
    if (response.status !== 202) throw new Error(`POST /v1/jobs answered ${response.status}`);
  }
  return {
    p50_ms: percentile(took, 50),
    p99_ms: percentile(took, 99),
    per_s: count / ((performance.now() - started) / 1000),
  };
}

async function concurrent(
  url: string,
  seconds: number,
  connections: number,
  pids: { scheduler: { pid: number | undefined }; redis: { pid: number | undefined } },
): Promise<Concurrent> {
  const before = cpuSnapshot(pids);
  const result = await autocannon({
    url: `${url}/v1/jobs`,
    method: "POST",
    connections,
    duration: seconds,
    body: JSON.stringify(BODY),
    headers: { "content-type": "application/json" },
  });
  const ok = result["2xx"];
  const cpu = cpuPerJob(before, cpuSnapshot(pids), ok);
  return {
    ok,
    per_s: ok / (result.duration || seconds),
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    scheduler_cpu_us: cpu.scheduler ?? Number.NaN,
    redis_cpu_us: cpu.redis ?? Number.NaN,
  };
}

const waitCalls = async (admin: Redis): Promise<number> =>
  parseCommandStats(await admin.info("commandstats")).wait ?? 0;

export async function benchReplicaWait(o: BenchOptions): Promise<BenchResult> {
  const rounds = o.quick ? 1 : Math.max(8, o.runs * 3);
  const seqCount = o.quick ? 10 : 300;
  const seconds = o.quick ? 0.5 : 2;
  const connections = 10;
  const replicated = await startReplicated(1);
  const admin = new Redis(replicated.url, { maxRetriesPerRequest: 1, connectionName: "bench-admin" });
  const stacks: Record<"off" | "on", CorralStack | null> = { off: null, on: null };
  type Mode = keyof typeof stacks;
  const seq: Record<Mode, Sequential[]> = { off: [], on: [] };
  const conc: Record<Mode, Concurrent[]> = { off: [], on: [] };
  const calls: Record<Mode, { waits: number; submits: number }> = {
    off: { waits: 0, submits: 0 },
    on: { waits: 0, submits: 0 },
  };
  const paired = { throughput: [] as number[], seq_p50: [] as number[], seq_p99: [] as number[] };
  const clients: Partial<Record<Mode, JsonClient>> = {};
  try {
    for (const mode of ["off", "on"] as const) {
      stacks[mode] = await CorralStack.start({
        redisUrl: replicated.url,
        modelsDir: o.modelsDir,
        prefix: `bench-wait-${mode}`,
        label: `replica-wait-${mode}`,
        logDir: o.logDir,
        profileDir: o.profileDir,
        slots: 0,
        sequences: 4,
        schedulerEnv: { CORRAL_REDIS_WAIT_REPLICAS: mode === "on" ? "1" : "0", CORRAL_REDIS_WAIT_TIMEOUT_MS: "1000" },
      });
      clients[mode] = new JsonClient(stacks[mode].url);
    }
    const pids = (mode: Mode) => ({
      scheduler: { pid: stacks[mode]!.schedulerPid },
      redis: { pid: replicated.master.process.pid },
    });
    const measure = async (mode: Mode, warm = false) => {
      // The other mode's last concurrent submits may still be in flight (their WAIT waits up
      // to CORRAL_REDIS_WAIT_TIMEOUT_MS): let them land before counting this mode's calls.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const w0 = await waitCalls(admin);
      const s = await sequential(clients[mode]!, warm ? 50 : seqCount);
      const c = await concurrent(stacks[mode]!.url, warm ? 1 : seconds, connections, pids(mode));
      const waits = (await waitCalls(admin)) - w0;
      if (!warm) {
        seq[mode].push(s);
        conc[mode].push(c);
        calls[mode].waits += waits;
        calls[mode].submits += seqCount + c.ok;
      }
      return { s, c };
    };
    // Warm-up: JIT, connections, the lane's Queue.
    await measure("off", true);
    await measure("on", true);
    for (let i = 0; i < rounds; i++) {
      const got = {} as Record<Mode, { s: Sequential; c: Concurrent }>;
      for (const mode of i % 2 === 0 ? (["off", "on"] as const) : (["on", "off"] as const))
        got[mode] = await measure(mode);
      paired.throughput.push(got.on.c.per_s / got.off.c.per_s);
      paired.seq_p50.push(got.on.s.p50_ms - got.off.s.p50_ms);
      paired.seq_p99.push(got.on.s.p99_ms - got.off.s.p99_ms);
      o.log(
        `  replica wait round ${i + 1}/${rounds}: sequential p50 ${round(got.off.s.p50_ms, 2)} → ${round(got.on.s.p50_ms, 2)} ms, ` +
          `${connections} connections ${Math.round(got.off.c.per_s)} → ${Math.round(got.on.c.per_s)}/s (WAIT off → on)`,
      );
    }
  } finally {
    for (const client of Object.values(clients)) client.close();
    await Promise.all(Object.values(stacks).map((stack) => stack?.close()));
    admin.disconnect();
    await replicated.stop();
  }
  const summary = (mode: Mode) => ({
    sequential: {
      p50_ms: round(median(seq[mode].map((r) => r.p50_ms)), 2),
      p99_ms: round(median(seq[mode].map((r) => r.p99_ms)), 2),
      submits_per_s: round(median(seq[mode].map((r) => r.per_s)), 0),
    },
    concurrent: {
      submits_per_s: round(median(conc[mode].map((r) => r.per_s)), 0),
      p50_ms: round(median(conc[mode].map((r) => r.p50_ms)), 1),
      p99_ms: round(median(conc[mode].map((r) => r.p99_ms)), 1),
      scheduler_cpu_us_per_submit: round(median(conc[mode].map((r) => r.scheduler_cpu_us)), 0),
      redis_cpu_us_per_submit: round(median(conc[mode].map((r) => r.redis_cpu_us)), 0),
      errors: conc[mode].reduce((sum, r) => sum + r.errors, 0),
    },
    wait_calls_per_submit: round(calls[mode].waits / Math.max(1, calls[mode].submits), 2),
  });
  const off = summary("off");
  const on = summary("on");
  const ratio = round(median(paired.throughput), 3);
  return {
    corral: on.concurrent.submits_per_s,
    baseline: off.concurrent.submits_per_s,
    ratio,
    unit: `submits/s, ${connections} connections, WAIT 1 vs none`,
    target: "none (report)",
    met: null,
    ratio_is: "median over rounds of (with WAIT / without) measured back to back",
    config: {
      topology: "master + 1 replica (replicaof), loopback, no persistence",
      wait_timeout_ms: 1000,
      rounds,
      sequential_submits_per_round: seqCount,
      connections,
      seconds,
      body: BODY,
    },
    wait_off: off,
    wait_on: on,
    added_sequential_p50_ms: round(median(paired.seq_p50), 2),
    added_sequential_p99_ms: round(median(paired.seq_p99), 2),
  };
}

runAlone(import.meta.url, "replica_wait");
