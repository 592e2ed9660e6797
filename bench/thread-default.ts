/**
 * The CPU thread default (issue 19): Corral out of the box (one CPU slot, no
 * CORRAL_THREADS, the scheduler's default sequences) against the same stack pinned to each
 * thread count from 1 to the cores, on stories260K and llama-2-tiny-random. The stacks run
 * side by side and take turns (the order rotates every run), so a busy spell of the
 * machine hits them alike. Headline: default ÷ best fixed count, tokens/s, the worse model.
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { CorralStack } from "./lib/corral-stack.js";
import { runCorralJobs, type JobBody } from "./lib/corral-jobs.js";
import { JsonClient } from "./lib/http-client.js";
import { storyPrompts } from "./lib/prompts.js";
import { median, ratio, round } from "./lib/stats.js";
import { runAlone } from "./lib/run-alone.js";
import type { BenchOptions, BenchResult } from "./lib/types.js";

const MODELS = ["stories260K", "llama-2-tiny-random"];
const SEQUENCES = 4;
const MAX_TOKENS = 64;

interface Side {
  name: string;
  /** null: out of the box. */
  threads: number | null;
  stack: CorralStack;
  client: JsonClient;
  tokensPerSecond: number[];
}

export async function benchThreadDefault(o: BenchOptions): Promise<BenchResult> {
  const cores = availableParallelism();
  const jobs = o.jobs ?? (o.quick ? 8 : 48);
  const fixed = Array.from({ length: Math.max(1, cores) }, (_, i) => i + 1);
  const perModel: Record<string, Record<string, number | null>> = {};
  let worst: { model: string; corral: number; baseline: number } | null = null;

  for (const id of MODELS) {
    const modelPath = join(o.modelsDir, `${id}.gguf`);
    if (!existsSync(modelPath)) continue;
    const sides: Side[] = [];
    try {
      for (const threads of [null, ...fixed]) {
        const name = threads === null ? "default" : `threads_${threads}`;
        const stack = await CorralStack.start({
          redisUrl: o.redisUrl,
          modelsDir: o.modelsDir,
          prefix: `bench-threads-${id}-${name}`,
          label: `threads-${id}-${name}`,
          logDir: o.logDir,
          profileDir: o.profileDir,
          slots: 1,
          sequences: SEQUENCES,
          modelPath,
          threads,
        });
        sides.push({ name, threads, stack, client: new JsonClient(stack.url), tokensPerSecond: [] });
      }
      const bodies = (prompts: string[]): JobBody[] =>
        prompts.map((prompt) => ({ model: id, prompt, max_tokens: MAX_TOKENS, temperature: 0 }));
      // Warm-up: loads the model (the default side calibrates here) and warms the JIT.
      for (const side of sides) await runCorralJobs(side.client, bodies(storyPrompts(SEQUENCES * 2, 10_000)));
      const prompts = storyPrompts(jobs);
      for (let run = 0; run < o.runs; run++) {
        const order = sides.map((_, i) => sides[(i + run) % sides.length]!);
        for (const side of order) {
          const result = await runCorralJobs(side.client, bodies(prompts));
          const tokens = result.jobs.reduce((sum, job) => sum + (job.record.result?.usage.completion_tokens ?? 0), 0);
          side.tokensPerSecond.push(tokens / (result.wallMs / 1000));
        }
        o.log(
          `  ${id} run ${run + 1}/${o.runs}: ${sides.map((s) => `${s.name} ${Math.round(s.tokensPerSecond.at(-1)!)}`).join(", ")} tok/s`,
        );
      }
    } finally {
      for (const side of sides) {
        side.client.close();
        await side.stack.close();
      }
    }
    const medians = new Map(sides.map((side) => [side.name, median(side.tokensPerSecond)]));
    const defaultTps = medians.get("default")!;
    const best = Math.max(...sides.filter((s) => s.threads !== null).map((s) => medians.get(s.name)!));
    perModel[id] = {
      ...Object.fromEntries([...medians].map(([name, tps]) => [name, round(tps, 1)])),
      best_fixed: round(best, 1),
      ratio: ratio(defaultTps, best),
    };
    if (worst === null || defaultTps / best < worst.corral / worst.baseline)
      worst = { model: id, corral: defaultTps, baseline: best };
  }
  if (worst === null) throw new Error(`neither ${MODELS.join(" nor ")} is in ${o.modelsDir}`);
  const headline = ratio(worst.corral, worst.baseline);
  return {
    corral: round(worst.corral, 1),
    baseline: round(worst.baseline, 1),
    ratio: headline,
    unit: `tokens/s, no CORRAL_THREADS vs the best of 1..${cores} threads (${worst.model}, the worse model)`,
    target: "ratio >= 0.90",
    met: headline === null ? null : headline >= 0.9,
    config: { jobs, max_tokens: MAX_TOKENS, slots: 1, sequences: SEQUENCES, cores },
    tokens_per_s: perModel,
  };
}

runAlone(import.meta.url, "thread_default");
