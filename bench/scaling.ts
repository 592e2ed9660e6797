/**
 * 4. Scaling: tokens/s with 1 and 2 worker slots (processes, one llama.cpp thread each),
 * and 1, 2 and 4 sequences per slot, Corral next to the direct loop of the same shape.
 */
import { join } from "node:path";
import { measureThroughput, type ThroughputRun } from "./e2e-throughput.js";
import { STORIES } from "./lib/corral-stack.js";
import { median, ratio, round } from "./lib/stats.js";
import { runAlone } from "./lib/run-alone.js";
import type { BenchOptions, BenchResult } from "./lib/types.js";

const SHAPES = [
  { slots: 1, sequences: 1 },
  { slots: 1, sequences: 2 },
  { slots: 1, sequences: 4 },
  { slots: 2, sequences: 1 },
  { slots: 2, sequences: 2 },
  { slots: 2, sequences: 4 },
];

const tps = (runs: ThroughputRun[]) => median(runs.map((run) => run.tokensPerSecond));

export async function benchScaling(o: BenchOptions): Promise<BenchResult> {
  const jobs = o.quick ? 6 : 80;
  const matrix: Record<
    string,
    { corral: number | null; baseline: number | null; ratio: number | null; jobs_per_s: number | null }
  > = {};
  const raw: Record<string, { corral: number; baseline: number }> = {};
  // A quick run keeps the two shapes the headline figure needs.
  const shapes = o.quick ? SHAPES.filter((shape) => shape.sequences === 1) : SHAPES;
  for (const shape of shapes) {
    const key = `slots_${shape.slots}_seq_${shape.sequences}`;
    const m = await measureThroughput(
      o,
      {
        ...shape,
        model: { id: STORIES, path: join(o.modelsDir, `${STORIES}.gguf`) },
        gpu: false,
        threads: 1,
        jobs,
        maxTokens: 64,
        warmup: o.quick ? 2 : Math.max(8, shape.slots * shape.sequences * 4),
      },
      `scaling-${shape.slots}x${shape.sequences}`,
    );
    raw[key] = { corral: tps(m.corral), baseline: tps(m.baseline) };
    matrix[key] = {
      corral: round(raw[key].corral, 1),
      baseline: round(raw[key].baseline, 1),
      ratio: ratio(raw[key].corral, raw[key].baseline),
      jobs_per_s: round(median(m.corral.map((run) => run.jobsPerSecond)), 2),
    };
  }
  const speedup = (which: "corral" | "baseline") => ratio(raw.slots_2_seq_1![which], raw.slots_1_seq_1![which], 2);
  const corral = speedup("corral");
  const baseline = speedup("baseline");
  return {
    corral,
    baseline,
    ratio: ratio(corral, baseline, 2),
    unit: "× tokens/s, 2 slots vs 1 (1 sequence)",
    target: "none (report)",
    met: null,
    config: { jobs, max_tokens: 64, threads_per_slot: 1, cores: 2 },
    tokens_per_s: matrix,
  };
}

runAlone(import.meta.url, "scaling");
