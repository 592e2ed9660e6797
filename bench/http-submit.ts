/**
 * 5. HTTP submit rate: `POST /v1/jobs` with autocannon against the hello-world express
 * app in the same scheduler process, in the same run. No worker runs: the jobs stay
 * queued, so this is the submit path alone (HTTP, auth, validation, Redis writes, BullMQ add).
 * Also `GET /v1/models` (Corral's middleware and routing, no Redis) to split the cost.
 */
import autocannon from "autocannon";
import { CorralStack, STORIES } from "./lib/corral-stack.js";
import { processCpuMicros } from "./lib/process-cpu.js";
import { median, ratio, round } from "./lib/stats.js";
import { runAlone } from "./lib/run-alone.js";
import type { BenchOptions, BenchResult } from "./lib/types.js";

const BODY = JSON.stringify({ model: STORIES, prompt: "Once upon a time", max_tokens: 16, temperature: 0 });

interface CpuPids {
  scheduler: number | undefined;
  redis: number | undefined;
}

async function cannon(url: string, method: "POST" | "GET", seconds: number, connections: number, pids: CpuPids) {
  const before = { scheduler: processCpuMicros(pids.scheduler), redis: processCpuMicros(pids.redis) };
  const result = await autocannon({
    url,
    method,
    connections,
    duration: seconds,
    ...(method === "POST" ? { body: BODY, headers: { "content-type": "application/json" } } : {}),
  });
  const ok = result["2xx"];
  const perRequest = (pid: number | undefined, start: number | null) => {
    const end = processCpuMicros(pid);
    return start === null || end === null || ok === 0 ? Number.NaN : (end - start) / ok;
  };
  return {
    requests_per_s: ok / (result.duration || seconds),
    scheduler_cpu_us: perRequest(pids.scheduler, before.scheduler),
    redis_cpu_us: perRequest(pids.redis, before.redis),
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
  };
}

export async function benchHttpSubmit(o: BenchOptions): Promise<BenchResult> {
  const seconds = o.quick ? 1 : 5;
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
  const pids: CpuPids = { scheduler: stack.schedulerPid, redis: o.redis.pid };
  const submit: Awaited<ReturnType<typeof cannon>>[] = [];
  const hello: Awaited<ReturnType<typeof cannon>>[] = [];
  const models: Awaited<ReturnType<typeof cannon>>[] = [];
  try {
    // Warm-up: JIT, connections, the lane's Queue.
    await cannon(`${stack.helloUrl}/hello`, "POST", 1, connections, pids);
    await cannon(`${stack.url}/v1/jobs`, "POST", 1, connections, pids);
    for (let run = 0; run < o.runs; run++) {
      hello.push(await cannon(`${stack.helloUrl}/hello`, "POST", seconds, connections, pids));
      submit.push(await cannon(`${stack.url}/v1/jobs`, "POST", seconds, connections, pids));
      models.push(await cannon(`${stack.url}/v1/models`, "GET", seconds, connections, pids));
      o.log(
        `  http run ${run + 1}/${o.runs}: hello ${Math.round(hello.at(-1)!.requests_per_s)}/s, submit ${Math.round(submit.at(-1)!.requests_per_s)}/s`,
      );
    }
  } finally {
    await stack.close();
  }
  const summary = (list: typeof submit) => ({
    requests_per_s: round(median(list.map((r) => r.requests_per_s)), 0),
    p50_ms: round(median(list.map((r) => r.p50_ms)), 1),
    p99_ms: round(median(list.map((r) => r.p99_ms)), 1),
    scheduler_cpu_us_per_request: round(median(list.map((r) => r.scheduler_cpu_us)), 0),
    redis_cpu_us_per_request: round(median(list.map((r) => r.redis_cpu_us)), 0),
    errors: list.reduce((sum, r) => sum + r.errors, 0),
  });
  const s = summary(submit);
  const h = summary(hello);
  const r = ratio(s.requests_per_s, h.requests_per_s);
  return {
    corral: s.requests_per_s,
    baseline: h.requests_per_s,
    ratio: r,
    unit: "requests/s",
    target: "ratio >= 0.5",
    met: r === null ? null : r >= 0.5 && s.errors === 0,
    config: { tool: "autocannon", connections, seconds, body: JSON.parse(BODY) as unknown },
    submit: s,
    hello: h,
    models_get: summary(models),
  };
}

runAlone(import.meta.url, "http_submit");
