import { readFile } from "node:fs/promises";
import { Command, InvalidArgumentError, Option } from "commander";
import { isFinalStatus, type ChatMessage, type JobRecord } from "@corral/shared";
import type { JobSubmission } from "../client/scheduler-client.js";
import type { CliContext } from "../context.js";
import { CliError, EXIT_USAGE } from "../errors.js";
import { withClientOptions } from "./client-options.js";

const intArg = (value: string): number => {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError("expected a positive integer");
  return Number(value);
};
const numberArg = (value: string): number => {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) throw new InvalidArgumentError("expected a number");
  return n;
};

/** Reads a messages file: a JSON array of `{role, content}`, or `{messages: [...]}`. */
export async function readMessagesFile(path: string): Promise<ChatMessage[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new CliError(`cannot read ${path}: ${(error as Error).message}`, { exitCode: EXIT_USAGE });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new CliError(`${path} is not JSON: ${(error as Error).message}`, { exitCode: EXIT_USAGE });
  }
  const list = Array.isArray(parsed) ? parsed : (parsed as { messages?: unknown } | null)?.messages;
  if (!Array.isArray(list)) {
    throw new CliError(`${path}: expected a JSON array of {"role", "content"} messages or {"messages": [...]}`, {
      exitCode: EXIT_USAGE,
    });
  }
  return list as ChatMessage[];
}

/** What `submit --wait` prints for a final job, and the exit code. */
function finalOutput(record: JobRecord): { text: string; ok: boolean } {
  if (record.status === "succeeded" && record.result) return { text: record.result.text, ok: true };
  const reason = record.error ? `${record.error.message} (${record.error.code})` : record.status;
  return { text: `job ${record.id} ${record.status}: ${reason}`, ok: false };
}

/**
 * What `submit --wait` prints while the job is not final: a queued job's estimated queue
 * position and start (when the scheduler gives them), or its status.
 */
export function progressLine(record: JobRecord, now = Date.now()): string {
  if (record.status !== "queued" || record.queue_position === undefined) return `job ${record.id} ${record.status}`;
  const place = `job ${record.id} queued: position ${record.queue_position}`;
  if (record.estimated_start_at === undefined) return place;
  const seconds = Math.max(0, Math.round((record.estimated_start_at - now) / 1000));
  const at = new Date(record.estimated_start_at).toISOString().slice(11, 19);
  return `${place}, estimated start in ~${seconds} s (${at} UTC)`;
}

/** `corral submit`: one native job (POST /v1/jobs). */
export function submitCommand(ctx: CliContext): Command {
  const command = new Command("submit")
    .description("submit one job (POST /v1/jobs) and print its id, or with --wait its text")
    .requiredOption("--model <id>", "model id (see `corral models`)")
    .addOption(new Option("--prompt <text>", "a plain completion prompt").conflicts("messagesFile"))
    .option("--messages-file <path>", 'a JSON file of chat messages: [{"role": "user", "content": "…"}]')
    .option("--max-tokens <n>", "most tokens to generate", intArg)
    .option("--temperature <t>", "sampling temperature, 0 to 2", numberArg)
    .option("--priority <n>", "1 (most urgent) to 100", intArg)
    .option("--wait", "wait for the job to finish and print its text");
  const client = withClientOptions(command, ctx);
  command.action(
    async (opts: {
      model: string;
      prompt?: string;
      messagesFile?: string;
      maxTokens?: number;
      temperature?: number;
      priority?: number;
      wait?: boolean;
    }) => {
      if ((opts.prompt === undefined) === (opts.messagesFile === undefined)) {
        throw new CliError("give either --prompt or --messages-file", { exitCode: EXIT_USAGE });
      }
      const body: JobSubmission = { model: opts.model };
      if (opts.prompt !== undefined) body.prompt = opts.prompt;
      if (opts.messagesFile !== undefined) body.messages = await readMessagesFile(opts.messagesFile);
      if (opts.maxTokens !== undefined) body.max_tokens = opts.maxTokens;
      if (opts.temperature !== undefined) body.temperature = opts.temperature;
      if (opts.priority !== undefined) body.priority = opts.priority;
      const api = client();
      const job = await api.submitJob(body);
      if (!opts.wait) {
        ctx.io.out(job.id);
        return;
      }
      ctx.io.err(`job ${job.id} ${job.status}; waiting…`);
      // The position first, at once; then each change of position or status.
      let last = `job ${job.id} ${job.status}`;
      const report = (record: JobRecord) => {
        const line = progressLine(record);
        // The estimate's seconds tick down on their own: only a new position or status is news.
        const key = line.replace(/, estimated start .*$/, "");
        if (key !== last) ctx.io.err(line);
        last = key;
      };
      const first = await api.getJob(job.id);
      if (!isFinalStatus(first.status)) report(first);
      const final = isFinalStatus(first.status) ? first : await api.waitForJob(job.id, { onProgress: report });
      const { text, ok } = finalOutput(final);
      if (!ok) throw new CliError(text);
      ctx.io.out(text);
    },
  );
  return command;
}
