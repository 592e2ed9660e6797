/**
 * What counting prompts at submit costs the scheduler (issue 16): PromptLengthGuard.check
 * on a typical chat, a 4 KB completion, the worst accepted prompt (just under the byte
 * bound of a 4096-token context), and a 1 MB prompt (refused by its length alone). The
 * headline is the typical chat, ms per request; the first check's load is reported beside.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { pino } from "pino";
import { PromptLengthGuard, type PromptJob } from "@corral/scheduler";
import type { CatalogModel } from "@corral/shared";
import { round } from "./lib/stats.js";
import type { BenchOptions, BenchResult } from "./lib/types.js";

const CONTEXT = 4096;
const MODELS = ["stories260K", "llama-2-tiny-random"];

async function msPerCheck(guard: PromptLengthGuard, model: CatalogModel, job: PromptJob, n: number): Promise<number> {
  await guard.check(model, job, true).catch(() => undefined);
  const started = performance.now();
  for (let i = 0; i < n; i++) await guard.check(model, job, true).catch(() => undefined);
  return (performance.now() - started) / n;
}

export async function benchPromptLength(o: BenchOptions): Promise<BenchResult> {
  const n = o.quick ? 5 : 200;
  const guard = new PromptLengthGuard({ modelsDir: o.modelsDir, logger: pino({ level: "silent" }) });
  const perModel: Record<string, Record<string, number | null>> = {};
  try {
    for (const id of MODELS) {
      if (!existsSync(join(o.modelsDir, `${id}.gguf`))) continue;
      const model = { id, file: `${id}.gguf`, context_size: CONTEXT } as unknown as CatalogModel;
      const started = performance.now();
      await guard.check(model, { kind: "completion", prompt: "hi", max_tokens: 1 }, true);
      const loadMs = performance.now() - started;
      const chat: PromptJob = {
        kind: "chat",
        max_tokens: 64,
        messages: [
          { role: "system", content: "You are a storyteller." },
          {
            role: "user",
            content: "Tell me a story about a cat who lives in a small house near the river. ".repeat(3),
          },
        ],
      };
      const sentence = "Once upon a time there was a girl. ";
      perModel[id] = {
        first_check_ms: round(loadMs, 1),
        chat_ms: round(await msPerCheck(guard, model, chat, n), 3),
        completion_4kb_ms: round(
          await msPerCheck(guard, model, { kind: "completion", prompt: sentence.repeat(117), max_tokens: 64 }, n),
          3,
        ),
        refused_1mb_ms: round(
          await msPerCheck(guard, model, { kind: "completion", prompt: "x".repeat(1 << 20), max_tokens: 1 }, n),
          3,
        ),
      };
    }
  } finally {
    await guard.close();
  }
  const headline = perModel.stories260K?.chat_ms ?? null;
  o.log(`prompt_length: ${JSON.stringify(perModel)}`);
  return {
    corral: headline,
    baseline: null,
    ratio: null,
    unit: "ms per chat request (stories260K)",
    target: "none (a cost to know)",
    met: null,
    models: perModel,
  };
}
