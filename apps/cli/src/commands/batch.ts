import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { Command, InvalidArgumentError, Option } from "commander";
import { BATCH_ENDPOINTS, isFinalBatchStatus, type BatchEndpoint, type BatchObject } from "@corral/shared";
import type { CliContext } from "../context.js";
import { CLIENT_ENV, loadConfig } from "../env.js";
import { CliError, EXIT_USAGE, ExitCode } from "../errors.js";
import { addEnvOptions } from "../options/env-options.js";
import { envWithFlags, loadOrExplain } from "../options/with-flags.js";
import { formatAge, formatTable } from "../output/table.js";
import { BatchClient } from "./batch-client.js";
import { BatchProgress, formatProgressLine, progressFigures } from "./batch-progress.js";

/** Exit code when Ctrl-C stops `wait` (the batch keeps running). */
export const EXIT_INTERRUPTED = 130;

const positiveNumber = (value: string): number => {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError("expected a positive number");
  return n;
};

const endpointOption = () =>
  new Option("--endpoint <path>", "the endpoint every line calls (default: the first line's url)").choices([
    ...BATCH_ENDPOINTS,
  ]);

/** Adds `--url` / `--api-key` (CORRAL_URL, CORRAL_API_KEY) and returns a factory for the client. */
function withBatchClient(command: Command, ctx: CliContext): () => BatchClient {
  const map = addEnvOptions(command, CLIENT_ENV);
  return () => {
    const config = loadOrExplain(loadConfig, envWithFlags(ctx.env, command, map));
    return new BatchClient({ url: config.url, apiKey: config.apiKey });
  };
}

/** The `url` of the first request line of a JSONL file. */
export async function detectEndpoint(path: string): Promise<BatchEndpoint> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      if (line.trim() === "") continue;
      let url: unknown;
      try {
        url = (JSON.parse(line) as { url?: unknown }).url;
      } catch {
        break;
      }
      if (typeof url === "string" && (BATCH_ENDPOINTS as readonly string[]).includes(url)) return url as BatchEndpoint;
      break;
    }
  } catch (error) {
    throw new CliError(`cannot read ${path}: ${(error as Error).message}`, { exitCode: EXIT_USAGE });
  } finally {
    lines.close();
  }
  throw new CliError(`cannot tell the endpoint from the first line of ${path}`, {
    exitCode: EXIT_USAGE,
    hint: `give it with --endpoint (${BATCH_ENDPOINTS.join(", ")})`,
  });
}

/** `key=value` → a metadata entry (repeatable). */
const metadataArg = (value: string, previous: Record<string, string> = {}): Record<string, string> => {
  const at = value.indexOf("=");
  if (at <= 0) throw new InvalidArgumentError("expected key=value");
  return { ...previous, [value.slice(0, at)]: value.slice(at + 1) };
};

interface SubmitOptions {
  endpoint?: BatchEndpoint;
  metadata?: Record<string, string>;
}

async function submit(ctx: CliContext, client: BatchClient, path: string, opts: SubmitOptions): Promise<BatchObject> {
  const endpoint = opts.endpoint ?? (await detectEndpoint(path));
  const file = await client.uploadFile(path);
  ctx.io.err(`uploaded ${path} as ${file.id} (${file.bytes} bytes)`);
  const batch = await client.createBatch({
    input_file_id: file.id,
    endpoint,
    completion_window: "24h",
    ...(opts.metadata ? { metadata: opts.metadata } : {}),
  });
  ctx.io.err(`batch ${batch.id} ${batch.status} (${endpoint})`);
  return batch;
}

interface WaitOptions {
  output?: string;
  errors?: string;
  /** Seconds between plain progress lines (no terminal). */
  interval: number;
  /** Milliseconds between polls. */
  poll: number;
}

/** How to pick the wait up again after Ctrl-C. */
function resumeCommand(id: string, opts: WaitOptions): string {
  const files = `${opts.output ? ` -o ${opts.output}` : ""}${opts.errors ? ` -e ${opts.errors}` : ""}`;
  return `corral batch wait ${id}${files}`;
}

/**
 * Polls the batch until it is final, showing progress; then downloads its files. Ctrl-C
 * stops only the waiting (the batch runs on) and says how to resume. Exits 1 when the
 * batch did not complete.
 */
async function waitAndDownload(ctx: CliContext, client: BatchClient, id: string, opts: WaitOptions): Promise<void> {
  const progress = new BatchProgress({
    io: ctx.io,
    tty: ctx.io.isTty && Boolean(process.stderr.isTTY),
    intervalMs: opts.interval * 1000,
  });
  const stop = new AbortController();
  const onInterrupt = () => stop.abort();
  process.once("SIGINT", onInterrupt);
  let batch: BatchObject;
  try {
    for (;;) {
      batch = await client.getBatch(id);
      progress.update(batch);
      if (isFinalBatchStatus(batch.status)) break;
      try {
        await sleep(opts.poll, undefined, { signal: stop.signal });
      } catch {
        progress.stop();
        ctx.io.err(
          `stopped waiting: batch ${id} is still ${batch.status} on the scheduler (Ctrl-C does not cancel it).`,
        );
        ctx.io.err(`resume with: ${resumeCommand(id, opts)}`);
        throw new ExitCode(EXIT_INTERRUPTED);
      }
    }
  } finally {
    process.off("SIGINT", onInterrupt);
    progress.stop();
  }
  const f = progressFigures(batch, null);
  ctx.io.err(
    `${batch.id} ${batch.status}: ${batch.request_counts.completed} completed, ${f.failed} failed of ${f.total}`,
  );
  if (batch.status === "failed") {
    for (const error of (batch.errors?.data ?? []).slice(0, 20)) ctx.io.err(`  ${error.message}`);
    throw new CliError(`batch ${batch.id} failed: its input file is not a valid batch`);
  }
  if (batch.output_file_id && opts.output) {
    await client.downloadFile(batch.output_file_id, opts.output);
    ctx.io.err(`wrote ${batch.request_counts.completed} results to ${opts.output}`);
  } else if (opts.output) {
    ctx.io.err(`no output file: no request completed (${opts.output} not written)`);
  }
  if (batch.error_file_id) {
    if (opts.errors) {
      await client.downloadFile(batch.error_file_id, opts.errors);
      ctx.io.err(`wrote ${f.failed} errors to ${opts.errors}`);
    } else {
      ctx.io.err(`${f.failed} requests failed: get them with -e errors.jsonl (error file ${batch.error_file_id})`);
    }
  }
  if (batch.status !== "completed") throw new CliError(`batch ${batch.id} ended ${batch.status}`);
}

const waitOptions = (command: Command): Command =>
  command
    .option("--interval <seconds>", "seconds between progress lines when not on a terminal", positiveNumber, 5)
    .option("--poll <ms>", "milliseconds between status checks", positiveNumber, 1000);

/** The `corral batch list` table. */
export function formatBatchTable(batches: readonly BatchObject[], now: number): string {
  if (batches.length === 0) return "no batches";
  const rows = batches.map((b) => [
    b.id,
    b.status,
    b.endpoint,
    `${b.request_counts.completed + b.request_counts.failed}/${b.request_counts.total}`,
    String(b.request_counts.failed),
    `${formatAge(now - b.created_at * 1000)} ago`,
  ]);
  return formatTable(["ID", "STATUS", "ENDPOINT", "DONE", "FAILED", "CREATED"], rows);
}

/** `corral batch …`: OpenAI-format batch jobs (submit, status, wait, run, cancel, list). */
export function batchCommand(ctx: CliContext): Command {
  const batch = new Command("batch").description(
    "run a JSONL file of OpenAI requests as a batch (the OpenAI Batch API)",
  );

  const submitCmd = new Command("submit")
    .description("upload a JSONL file and create a batch; prints the batch id")
    .argument("<file>", "JSONL input: one {custom_id, method, url, body} per line")
    .addOption(endpointOption())
    .option("--metadata <key=value>", "metadata on the batch (repeatable)", metadataArg);
  const submitClient = withBatchClient(submitCmd, ctx);
  submitCmd.action(async (path: string, opts: SubmitOptions) => {
    ctx.io.out((await submit(ctx, submitClient(), path, opts)).id);
  });

  const statusCmd = new Command("status")
    .description("show a batch's status and counts")
    .argument("<id>", "batch id")
    .option("--json", "print the batch object as JSON");
  const statusClient = withBatchClient(statusCmd, ctx);
  statusCmd.action(async (id: string, opts: { json?: boolean }) => {
    const b = await statusClient().getBatch(id);
    if (opts.json) {
      ctx.io.out(JSON.stringify(b, null, 2));
      return;
    }
    ctx.io.out(formatProgressLine(b, progressFigures(b, null)));
    if (b.output_file_id) ctx.io.out(`output file: ${b.output_file_id}`);
    if (b.error_file_id) ctx.io.out(`error file: ${b.error_file_id}`);
    for (const error of (b.errors?.data ?? []).slice(0, 20)) ctx.io.out(`error: ${error.message}`);
  });

  const waitCmd = waitOptions(
    new Command("wait")
      .description("wait for a batch with a live progress bar, then download its results (Ctrl-C only stops waiting)")
      .argument("<id>", "batch id")
      .option("-o, --output <file>", "where to write the output (one result line per completed request)")
      .option("-e, --errors <file>", "where to write the error lines (failed or unrun requests)"),
  );
  const waitClient = withBatchClient(waitCmd, ctx);
  waitCmd.action(async (id: string, opts: WaitOptions) => {
    await waitAndDownload(ctx, waitClient(), id, opts);
  });

  const runCmd = waitOptions(
    new Command("run")
      .description("submit a JSONL file, wait with a progress bar, and download the results: the one-liner")
      .argument("<file>", "JSONL input: one {custom_id, method, url, body} per line")
      .requiredOption("-o, --output <file>", "where to write the output")
      .option("-e, --errors <file>", "where to write the error lines")
      .addOption(endpointOption())
      .option("--metadata <key=value>", "metadata on the batch (repeatable)", metadataArg),
  );
  const runClient = withBatchClient(runCmd, ctx);
  runCmd.action(async (path: string, opts: WaitOptions & SubmitOptions) => {
    const client = runClient();
    const created = await submit(ctx, client, path, opts);
    await waitAndDownload(ctx, client, created.id, opts);
  });

  const cancelCmd = new Command("cancel")
    .description("cancel a batch (finished lines are kept)")
    .argument("<id>", "batch id");
  const cancelClient = withBatchClient(cancelCmd, ctx);
  cancelCmd.action(async (id: string) => {
    const b = await cancelClient().cancelBatch(id);
    ctx.io.out(`${b.id} ${b.status}`);
  });

  const listCmd = new Command("list")
    .description("list your batches, newest first")
    .option("--limit <n>", "how many", (v) => Math.min(100, Math.floor(positiveNumber(v))), 20)
    .option("--json", "print the batches as JSON");
  const listClient = withBatchClient(listCmd, ctx);
  listCmd.action(async (opts: { limit: number; json?: boolean }) => {
    const page = await listClient().listBatches({ limit: opts.limit });
    ctx.io.out(opts.json ? JSON.stringify(page.data, null, 2) : formatBatchTable(page.data, Date.now()));
  });

  for (const sub of [submitCmd, statusCmd, waitCmd, runCmd, cancelCmd, listCmd]) {
    batch.addCommand(
      sub
        .exitOverride()
        .showHelpAfterError("(run with --help for usage)")
        .configureOutput({
          writeOut: (text) => ctx.io.out(text.replace(/\n$/, "")),
          writeErr: (text) => ctx.io.err(text.replace(/\n$/, "")),
        }),
    );
  }
  return batch;
}
