/**
 * Prompt-prefix reuse (issue 18, item 6): 300 completion prompts that share a 400-token
 * system prompt, each with its own short ending, run through the worker's engine with
 * reuse on (CORRAL_PREFIX_REUSE=true, the default) and off, in the same run on the same
 * model (stories260K, 1 thread, 4 sequences kept busy). Each side runs every prompt once,
 * in blocks of 50 that alternate between the sides (the first side alternating too), so a
 * busy spell of the machine hits both alike; a few prompts warm each side up first.
 * Figures: time to first token (from holding a sequence; prompt evaluation included) and
 * throughput, jobs and completion tokens per second. Headline: tokens/s with reuse ÷
 * without.
 *
 * Both sides generate at temperature 0; `differing_prompts` lists the prompts whose text
 * differs between them. Not always none: with several sequences at once, llama.cpp
 * batches their tokens together, and a batch's arithmetic differs in the last bits with
 * its shape, so concurrent runs differ now and then with or without reuse. Each differing
 * prompt is run again alone on a cleared sequence (the reference), and
 * `off_reference` counts, per side, the texts that differ from it. Run one at a time,
 * reuse and no reuse gave the same 300 texts; the engine's tests pin that down
 * (prefix-reuse.test.ts).
 */
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { pino } from "pino";
import type { JobPayload } from "@corral/shared";
import { Engine, type EngineResult, type LoadedModel } from "@corral/worker";
import { median, percentile, ratio, round } from "./lib/stats.js";
import type { BenchOptions, BenchResult } from "./lib/types.js";

const MODEL = "stories260K";
const SEQUENCES = 4;
const CONTEXT = 512;
const SYSTEM_TOKENS = 400;
const MAX_TOKENS = 32;
const BLOCK = 50;
const SENTENCES = [
  "You are a kind storyteller for small children.",
  "Every story has a girl or a boy, a friendly animal and a happy ending.",
  "Use short words and short sentences, and never anything scary.",
  "The stories happen in a park, a garden, a house or a small town by the sea.",
  "The children learn to share, to help a friend, or to say sorry.",
];

interface Side {
  name: "reuse" | "no_reuse";
  engine: Engine;
  model: LoadedModel;
  results: EngineResult[];
  seconds: number;
}

export async function benchPrefixReuse(o: BenchOptions): Promise<BenchResult> {
  const jobs = o.jobs ?? (o.quick ? 12 : 300);
  const logger = pino({ level: "silent" });
  const path = join(o.modelsDir, `${MODEL}.gguf`);
  const sides: Side[] = [];
  try {
    for (const name of ["reuse", "no_reuse"] as const) {
      const engine = await Engine.create({ gpu: false, threads: 1, logger, prefixReuse: name === "reuse" });
      const model = await engine.load({ modelId: MODEL, path, contextSize: CONTEXT, sequences: SEQUENCES });
      sides.push({ name, engine, model, results: [], seconds: 0 });
    }
    const system = await systemPrompt(sides[1]!.model);
    const prompt = (i: number) => `${system.text}Story ${i}: one day, ${WHO[i % WHO.length]} found ${i % 5} red balls.`;
    const prompts = Array.from({ length: jobs }, (_, i) => prompt(i));
    o.log(`prefix_reuse: system prompt ${system.tokens} tokens, ${jobs} prompts, ${SEQUENCES} sequences`);

    const warmUp = Array.from({ length: 2 * SEQUENCES }, (_, i) => prompt(jobs + i));
    for (const side of sides) await runAll(side.model, warmUp);
    const block = o.quick ? SEQUENCES : BLOCK;
    for (let start = 0, turn = 0; start < jobs; start += block, turn++) {
      for (const side of turn % 2 === 0 ? sides : [...sides].reverse()) {
        const measured = await runAll(side.model, prompts.slice(start, start + block));
        side.results.push(...measured.results);
        side.seconds += measured.seconds;
      }
    }
    const [reuse, noReuse] = [summarize(sides[0]!), summarize(sides[1]!)];
    const summary = { reuse, no_reuse: noReuse };
    // Prompts whose text differs between the sides (see the header: batching noise).
    const differing = sides[0]!.results.flatMap((r, i) => (r.text === sides[1]!.results[i]?.text ? [] : [i]));
    const offReference = { reuse: 0, no_reuse: 0 };
    for (const i of differing) {
      const reference = (await sides[1]!.model.run(job(prompts[i]!, MAX_TOKENS))).text;
      for (const side of sides) if (side.results[i]!.text !== reference) offReference[side.name]++;
    }
    o.log(`prefix_reuse: ${JSON.stringify(summary)}`);
    const headline = ratio(reuse.tokens_per_s, noReuse.tokens_per_s);
    return {
      corral: reuse.tokens_per_s,
      baseline: noReuse.tokens_per_s,
      ratio: headline,
      unit: "completion tokens/s, reuse vs no reuse (stories260K, 1 thread)",
      target: "ratio > 1",
      met: headline !== null && headline > 1,
      jobs,
      sequences: SEQUENCES,
      system_prompt_tokens: system.tokens,
      max_tokens: MAX_TOKENS,
      differing_prompts: differing,
      off_reference: offReference,
      ttft_p50_ratio: ratio(reuse.ttft_p50_ms, noReuse.ttft_p50_ms),
      jobs_per_s_ratio: ratio(reuse.jobs_per_s, noReuse.jobs_per_s),
      ...summary,
    };
  } finally {
    for (const side of sides) await side.engine.close();
  }
}

/** The longest run of SENTENCES' words of SYSTEM_TOKENS tokens or fewer (BOS included), counted by the model itself. */
async function systemPrompt(model: LoadedModel): Promise<{ text: string; tokens: number }> {
  const words = SENTENCES.join(" ").split(" ");
  const text = (n: number) => `${Array.from({ length: n }, (_, i) => words[i % words.length]).join(" ")} `;
  // Too long for the context (PromptTooLongError) counts as too long.
  const count = (n: number) =>
    model.run(job(text(n), 1)).then(
      (r) => r.usage.prompt_tokens,
      () => Infinity,
    );
  // A word adds at least one token: the answer is under SYSTEM_TOKENS words. Binary search.
  let [low, high] = [1, SYSTEM_TOKENS];
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if ((await count(middle)) <= SYSTEM_TOKENS) low = middle;
    else high = middle - 1;
  }
  return { text: text(low), tokens: await count(low) };
}

const WHO = ["a little girl", "a small dog", "a brave boy", "an old cat", "a happy bird", "a big bear", "a tiny fish"];

const job = (prompt: string, maxTokens: number): JobPayload => ({
  id: "bench",
  tenant: "bench",
  model: MODEL,
  file: `${MODEL}.gguf`,
  source: "native",
  kind: "completion",
  prompt,
  max_tokens: maxTokens,
  temperature: 0,
  stream: false,
  requirement_bytes: 0,
  created_at: Date.now(),
});

/** The prompts through the model, SEQUENCES at a time; results in the prompts' order. */
async function runAll(
  model: LoadedModel,
  prompts: readonly string[],
): Promise<{ results: EngineResult[]; seconds: number }> {
  const results: EngineResult[] = new Array<EngineResult>(prompts.length);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: SEQUENCES }, async () => {
      while (next < prompts.length) {
        const i = next++;
        results[i] = await model.run(job(prompts[i]!, MAX_TOKENS));
      }
    }),
  );
  return { results, seconds: (performance.now() - started) / 1000 };
}

interface SideFigures {
  ttft_p50_ms: number | null;
  ttft_p99_ms: number | null;
  jobs_per_s: number | null;
  tokens_per_s: number | null;
  prompt_tokens: number;
  reused_prompt_tokens: number;
  completion_tokens: number;
}

function summarize({ results, seconds }: Side): SideFigures {
  const ttfts = results.map((r) => r.ttft_ms).filter((ms): ms is number => ms !== null);
  const sum = (of: (r: EngineResult) => number) => results.reduce((total, r) => total + of(r), 0);
  return {
    ttft_p50_ms: round(median(ttfts), 2),
    ttft_p99_ms: round(percentile(ttfts, 99), 2),
    jobs_per_s: round(results.length / seconds, 2),
    tokens_per_s: round(sum((r) => r.usage.completion_tokens) / seconds, 1),
    prompt_tokens: sum((r) => r.usage.prompt_tokens),
    reused_prompt_tokens: sum((r) => r.reused_prompt_tokens ?? 0),
    completion_tokens: sum((r) => r.usage.completion_tokens),
  };
}
