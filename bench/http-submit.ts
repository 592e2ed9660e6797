/**
 * 5. HTTP submit rate: `POST /v1/jobs` with autocannon against a hello-world route on the
 * same server (the scheduler's, behind the request context every route there has), in the
 * same run. No worker runs: the jobs stay queued, so this is the submit path alone (auth,
 * validation, Redis writes, BullMQ add). Also the same route on a bare express app in the
 * same process (the framework's floor) and `GET /v1/models` (routing and auth, no Redis).
 */
import autocannon from "autocannon";
import { CorralStack, STORIES } from "./lib/corral-stack.js";
import { cpuPerJob, cpuSnapshot, type CpuSubject } from "./lib/process-cpu.js";
import { median, round } from "./lib/stats.js";
import { runAlone } from "./lib/run-alone.js";
import type { BenchOptions, BenchResult } from "./lib/types.js";

const BODY = JSON.stringify({ model: STORIES, prompt: "Once upon a time", max_tokens: 16, temperature: 0 });

async function cannon(
  url: string,
  method: "POST" | "GET",
  seconds: number,
  connections: number,
  pids: Record<"scheduler" | "redis", CpuSubject>,
) {
  const before = cpuSnapshot(pids);
  const result = await autocannon({
    url,
    method,
    connections,
    duration: seconds,
    ...(method === "POST" ? { body: BODY, headers: { "content-type": "application/json" } } : {}),
  });
  const ok = result["2xx"];
  const cpu = cpuPerJob(before, cpuSnapshot(pids), ok);
  return {
    requests_per_s: ok / (result.duration || seconds),
    scheduler_cpu_us: cpu.scheduler ?? Number.NaN,
    redis_cpu_us: cpu.redis ?? Number.NaN,
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
  };
}

type Measured = Awaited<ReturnType<typeof cannon>>;

export async function benchHttpSubmit(o: BenchOptions): Promise<BenchResult> {
  // Many short rounds, each measuring every route back to back (in alternating order), and
  // the median of each round's own ratio: this machine's speed drifts by tens of percent
  // within a minute, and a ratio of two figures taken seconds apart cancels most of it.
  const seconds = o.quick ? 0.5 : 2;
  const rounds = o.quick ? 1 : Math.max(12, o.runs * 4);
  const connections = 10;
  const stack = await CorralStack.start({
    redisUrl: o.redisUrl,
    modelsDir: o.modelsDir,
    prefix: "bench-http",
    label: "http",
    logDir: o.logDir,
    profileDir: o.profileDir,
    slots: 0,
    sequences: 4,
  });
  const pids = { scheduler: { pid: stack.schedulerPid }, redis: { pid: o.redis.pid } };
  const targets = {
    submit: { url: `${stack.url}/v1/jobs`, method: "POST" },
    hello: { url: `${stack.url}/hello`, method: "POST" },
    hello_bare: { url: `${stack.helloUrl}/hello`, method: "POST" },
    models_get: { url: `${stack.url}/v1/models`, method: "GET" },
  } as const;
  type Target = keyof typeof targets;
  const order = Object.keys(targets) as Target[];
  const measured: Record<Target, Measured[]> = { submit: [], hello: [], hello_bare: [], models_get: [] };
  const paired = { hello: [] as number[], hello_bare: [] as number[] };
  try {
    // Warm-up: JIT, connections, the lane's Queue.
    for (const name of order) await cannon(targets[name].url, targets[name].method, 1, connections, pids);
    for (let i = 0; i < rounds; i++) {
      const got = {} as Record<Target, Measured>;
      for (const name of i % 2 === 0 ? order : [...order].reverse()) {
        got[name] = await cannon(targets[name].url, targets[name].method, seconds, connections, pids);
        measured[name].push(got[name]);
      }
      paired.hello.push(got.submit.requests_per_s / got.hello.requests_per_s);
      paired.hello_bare.push(got.submit.requests_per_s / got.hello_bare.requests_per_s);
      o.log(
        `  http round ${i + 1}/${rounds}: submit ${Math.round(got.submit.requests_per_s)}/s, hello on the scheduler ${Math.round(got.hello.requests_per_s)}/s, bare express ${Math.round(got.hello_bare.requests_per_s)}/s`,
      );
    }
  } finally {
    await stack.close();
  }
  const summary = (list: Measured[]) => ({
    requests_per_s: round(median(list.map((r) => r.requests_per_s)), 0),
    p50_ms: round(median(list.map((r) => r.p50_ms)), 1),
    p99_ms: round(median(list.map((r) => r.p99_ms)), 1),
    scheduler_cpu_us_per_request: round(median(list.map((r) => r.scheduler_cpu_us)), 0),
    redis_cpu_us_per_request: round(median(list.map((r) => r.redis_cpu_us)), 0),
    errors: list.reduce((sum, r) => sum + r.errors, 0),
  });
  const submit = summary(measured.submit);
  const hello = summary(measured.hello);
  const helloBare = summary(measured.hello_bare);
  const r = round(median(paired.hello), 3);
  const rBare = round(median(paired.hello_bare), 3);
  return {
    corral: submit.requests_per_s,
    baseline: hello.requests_per_s,
    ratio: r,
    unit: "requests/s",
    target: "ratio >= 0.7 (vs a hello-world route on the same server; #21, 0.5 before)",
    met: r === null ? null : r >= 0.7 && submit.errors === 0,
    ratio_is: "median over rounds of (submit / hello) measured back to back",
    config: { tool: "autocannon", connections, seconds, rounds, body: JSON.parse(BODY) as unknown },
    submit,
    hello,
    hello_bare_express: { ...helloBare, submit_ratio: rBare, met: rBare !== null && rBare >= 0.5 },
    models_get: summary(measured.models_get),
    round_ratios: {
      hello: paired.hello.map((x) => round(x, 3)),
      hello_bare_express: paired.hello_bare.map((x) => round(x, 3)),
    },
  };
}

runAlone(import.meta.url, "http_submit");
