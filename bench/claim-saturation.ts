/**
 * Claim saturation against raw BullMQ: the highest offered rate of one-token jobs (open
 * loop) at which each system still claims with a p99 under 50 ms and keeps up (achieves at
 * least 90% of the offered rate), on the same machine in the same run. The rates rise in
 * turn for both systems (BullMQ, then Corral, at each rate), so drift in the machine's load
 * hits both; a system stops after two failed rates in a row.
 */
import { BullBaseline } from "./lib/bullmq-baseline.js";
import { CorralStack, STORIES } from "./lib/corral-stack.js";
import { runCorralJobs } from "./lib/corral-jobs.js";
import { JsonClient } from "./lib/http-client.js";
import { storyPrompts } from "./lib/prompts.js";
import { round } from "./lib/stats.js";
import { runAlone } from "./lib/run-alone.js";
import { latencies } from "./dispatch-latency.js";
import type { BenchOptions, BenchResult } from "./lib/types.js";

const P99_LIMIT_MS = 50;
const KEEP_UP = 0.9;

interface RatePoint {
  offered: number;
  achieved: number;
  claim_p99_ms: number;
  ok: boolean;
}

export async function benchClaimSaturation(o: BenchOptions): Promise<BenchResult> {
  const sequences = 4;
  const rates = o.quick ? [50, 100] : [100, 150, 200, 250, 300, 400, 500, 600, 800, 1000];
  const seconds = o.quick ? 0.2 : 5;
  const stack = await CorralStack.start({
    redisUrl: o.redisUrl,
    modelsDir: o.modelsDir,
    prefix: "bench-saturation",
    label: "saturation",
    logDir: o.logDir,
    profileDir: o.profileDir,
    slots: 1,
    sequences,
  });
  const bull = await BullBaseline.start({
    redisUrl: o.redisUrl,
    modelsDir: o.modelsDir,
    prefix: "bench-saturation-bull",
    label: "saturation",
    logDir: o.logDir,
    sequences,
  });
  const client = new JsonClient(stack.url);
  const points: { corral: RatePoint[]; baseline: RatePoint[] } = { corral: [], baseline: [] };
  const point = (offered: number, run: { claim_p99: number; achieved_per_s: number }): RatePoint => ({
    offered,
    achieved: round(run.achieved_per_s, 1) ?? 0,
    claim_p99_ms: round(run.claim_p99, 1) ?? Number.NaN,
    ok: run.claim_p99 < P99_LIMIT_MS && run.achieved_per_s >= KEEP_UP * offered,
  });
  const stopped = (list: RatePoint[]) => list.length >= 2 && !list.at(-1)!.ok && !list.at(-2)!.ok;
  try {
    // The same warm-up as dispatch_latency, shorter: both systems' code paths optimised.
    const warm = storyPrompts(o.quick ? 4 : 1000, 20_000);
    for (let at = 0; at < warm.length; at += 200) {
      const batch = warm.slice(at, at + 200);
      await bull.runJobs(batch.map((prompt) => ({ prompt, max_tokens: 1 })));
      await runCorralJobs(
        client,
        batch.map((prompt) => ({ model: STORIES, prompt, max_tokens: 1, temperature: 0 })),
        {},
      );
    }
    for (const rate of rates) {
      if (stopped(points.baseline) && stopped(points.corral)) break;
      const prompts = storyPrompts(Math.max(4, Math.round(rate * seconds)));
      if (!stopped(points.baseline)) {
        const b = await bull.runJobs(
          prompts.map((prompt) => ({ prompt, max_tokens: 1 })),
          rate,
        );
        points.baseline.push(point(rate, latencies(b.jobs, b.wallMs)));
      }
      if (!stopped(points.corral)) {
        const c = await runCorralJobs(
          client,
          prompts.map((prompt) => ({ model: STORIES, prompt, max_tokens: 1, temperature: 0 })),
          { ratePerSecond: rate },
        );
        const run = latencies(
          c.jobs.map((job) => ({
            submitAt: job.submitAt,
            acceptedAt: job.acceptedAt,
            claimedAt: job.record.started_at ?? job.resultAt,
            resultAt: job.resultAt,
          })),
          c.wallMs,
        );
        points.corral.push(point(rate, run));
      }
      const last = (list: RatePoint[]) => {
        const p = list.at(-1);
        return p?.offered === rate ? `p99 ${p.claim_p99_ms} ms, ${p.achieved}/s${p.ok ? "" : " (over)"}` : "stopped";
      };
      o.log(`  ${rate}/s offered: bullmq ${last(points.baseline)}; corral ${last(points.corral)}`);
    }
  } finally {
    client.close();
    await bull.close();
    await stack.close();
  }
  const highest = (list: RatePoint[]) => Math.max(0, ...list.filter((p) => p.ok).map((p) => p.offered));
  const corral = highest(points.corral);
  const baseline = highest(points.baseline);
  const ratio = baseline > 0 ? round(corral / baseline, 2) : null;
  return {
    corral,
    baseline,
    ratio,
    unit: `jobs/s (highest offered rate with claim p99 < ${P99_LIMIT_MS} ms)`,
    target: "ratio >= 0.8 (#21)",
    met: ratio === null ? null : ratio >= 0.8,
    config: { slots: 1, sequences, max_tokens: 1, seconds_per_rate: seconds, rates, keep_up: KEEP_UP },
    points,
  };
}

runAlone(import.meta.url, "claim_saturation");
