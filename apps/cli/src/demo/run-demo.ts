import type { JobRecord } from "@corral/shared";
import type { ModelEntry, SchedulerClient } from "../client/scheduler-client.js";
import { CliError } from "../errors.js";
import type { CliIo } from "../output/io.js";
import { DEMO_MODEL_FILE } from "./ensure-demo-model.js";
import { DEMO_PROMPTS, type DemoPrompt } from "./prompts.js";

export interface RunDemoOptions {
  client: SchedulerClient;
  io: CliIo;
  /** @defaultValue {@link DEMO_PROMPTS} */
  prompts?: readonly DemoPrompt[];
  /** @defaultValue 48 */
  maxTokens?: number;
  /** @defaultValue 0.7 */
  temperature?: number;
  /** Aborts the waiting (the jobs stay queued). */
  signal?: AbortSignal;
}

export interface DemoSummary {
  jobs: number;
  succeeded: number;
  failed: number;
  completionTokens: number;
  wallMs: number;
  tokensPerSecond: number;
}

/** The model the demo uses: the demo model when the catalog has it, else the first one. */
export function pickDemoModel(models: readonly ModelEntry[]): ModelEntry | undefined {
  const demoId = DEMO_MODEL_FILE.replace(/\.gguf$/, "");
  return models.find((m) => m.id === demoId || m.corral?.file === DEMO_MODEL_FILE) ?? models[0];
}

/** "worker-1/0" for a GPU slot, "worker-1/cpu" for a CPU slot. */
export function slotName(record: JobRecord): string {
  return `${record.worker ?? "?"}/${record.gpu ?? "cpu"}`;
}

const rate = (tokens: number, ms: number): string => (ms > 0 ? (tokens / (ms / 1000)).toFixed(1) : "-");

/**
 * Submits a small batch over HTTP, waits for every job, and prints each completion with
 * the slot that ran it and its tokens/s, then the overall tokens/s.
 */
export async function runDemo(options: RunDemoOptions): Promise<DemoSummary> {
  const { client, io } = options;
  const prompts = options.prompts ?? DEMO_PROMPTS;
  const maxTokens = options.maxTokens ?? 48;
  const temperature = options.temperature ?? 0.7;
  const model = pickDemoModel(await client.listModels());
  if (!model) throw new CliError("the scheduler lists no models, so the demo has nothing to run");

  io.out(`demo: ${prompts.length} jobs on ${model.id} (max_tokens ${maxTokens}, temperature ${temperature})`);
  const started = Date.now();
  const jobs = await Promise.all(
    prompts.map((p) =>
      client.submitJob({
        model: model.id,
        max_tokens: maxTokens,
        temperature,
        ...("prompt" in p ? { prompt: p.prompt } : { messages: p.messages }),
        metadata: { demo: p.label },
      }),
    ),
  );
  io.out(`submitted ${jobs.length} jobs; waiting for completions…`);

  let done = 0;
  let completionTokens = 0;
  let failed = 0;
  await Promise.all(
    jobs.map(async (job, index) => {
      const record = await client.waitForJob(job.id, options.signal ? { signal: options.signal } : {});
      done++;
      const prompt = prompts[index]!;
      const head = `[${done}/${jobs.length}] ${prompt.label} · job ${record.id} · slot ${slotName(record)}`;
      if (record.status !== "succeeded" || !record.result) {
        failed++;
        io.out(`${head} · ${record.status.toUpperCase()}: ${record.error?.message ?? "no result"}`);
        return;
      }
      const { usage, timings, text } = record.result;
      completionTokens += usage.completion_tokens;
      io.out(
        `${head} · ${usage.completion_tokens} tokens · ${rate(usage.completion_tokens, timings.generation_ms)} tokens/s`,
      );
      const shown = "prompt" in prompt ? `${prompt.prompt}${text}` : text;
      io.out(`    ${shown.replace(/\s+/g, " ").trim()}`);
    }),
  );
  const wallMs = Date.now() - started;
  const summary: DemoSummary = {
    jobs: jobs.length,
    succeeded: jobs.length - failed,
    failed,
    completionTokens,
    wallMs,
    tokensPerSecond: wallMs > 0 ? completionTokens / (wallMs / 1000) : 0,
  };
  io.out(
    `demo: ${summary.succeeded}/${summary.jobs} succeeded, ${completionTokens} tokens in ${(wallMs / 1000).toFixed(1)} s` +
      ` → ${rate(completionTokens, wallMs)} tokens/s overall`,
  );
  return summary;
}
