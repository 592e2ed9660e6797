// Prompts and completions never reach the logs at info: a real job through a scheduler and a
// worker run as the `corral` command (child processes), with both processes' output captured.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { pino } from "pino";
import { repoRootDir } from "../support/models.js";
import { cleanupPrefix, testRedis, uniquePrefix } from "../support/redis.js";
import {
  API_KEYS,
  MODEL,
  TENANT_KEYS,
  makeModelsDir,
  submitJob,
  waitForJob,
  type ModelsDir,
} from "./support/fixtures.js";

const PROMPT = "PRIVATE-PROMPT-7f3a Once upon a time";
const MARKER = "PRIVATE-PROMPT-7f3a";
const corral = resolve(repoRootDir, "apps/cli/bin/corral.js");

/** A `corral` child process whose stdout and stderr are kept. */
class CorralProcess {
  readonly output: string[] = [];
  readonly #child: ChildProcess;
  #exited: Promise<void>;

  constructor(command: "scheduler" | "worker", env: Record<string, string>) {
    // Only the variables this test sets: nothing CORRAL_* leaks in from the environment.
    const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("CORRAL_")));
    this.#child = spawn(process.execPath, [corral, command], {
      cwd: repoRootDir,
      env: { ...base, CORRAL_SKIP_BUILD: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const keep = (chunk: Buffer) => this.output.push(chunk.toString("utf8"));
    this.#child.stdout!.on("data", keep);
    this.#child.stderr!.on("data", keep);
    this.#exited = new Promise((done) => this.#child.once("exit", () => done()));
  }

  text(): string {
    return this.output.join("");
  }

  /** Resolves with the first match of `pattern` in the output. */
  async waitFor(pattern: RegExp, timeoutMs = 120_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = pattern.exec(this.text());
      if (match) return match;
      if (this.#child.exitCode !== null) throw new Error(`process exited:\n${this.text().slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${this.text().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGTERM, then SIGKILL after 30 s. */
  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill("SIGTERM");
      const timer = setTimeout(() => this.#child.kill("SIGKILL"), 30_000);
      await this.#exited;
      clearTimeout(timer);
    }
  }
}

interface RunLogs {
  logs: string;
  jobId: string;
  completion: string;
}

/** Starts both processes at `level`, runs one job with PROMPT, stops them, returns everything they printed. */
async function runJobAt(level: "info" | "debug", redisUrl: string, models: ModelsDir): Promise<RunLogs> {
  const prefix = uniquePrefix(`obs-logs-${level}`);
  const common = {
    CORRAL_REDIS_URL: redisUrl,
    CORRAL_PREFIX: prefix,
    CORRAL_MODELS_DIR: models.path,
    CORRAL_LOG_LEVEL: level,
  };
  const scheduler = new CorralProcess("scheduler", {
    ...common,
    CORRAL_PORT: "0",
    CORRAL_HOST: "127.0.0.1",
    CORRAL_DATA_DIR: resolve(models.path, `data-${level}`),
    CORRAL_API_KEYS: API_KEYS,
  });
  const worker = new CorralProcess("worker", {
    ...common,
    CORRAL_CPU: "true",
    CORRAL_CPU_SLOTS: "1",
    CORRAL_THREADS: "1",
    CORRAL_WORKER_METRICS_PORT: "0",
    CORRAL_WORKER_ID: `obs-logs-${randomBytes(3).toString("hex")}`,
    CORRAL_HEARTBEAT_MS: "500",
  });
  let outcome: { jobId: string; completion: string } | undefined;
  try {
    const url = (await scheduler.waitFor(/scheduler listening on (http:\/\/\S+)/))[1]!;
    await worker.waitFor(/worker \S+ running/);
    const submitted = await submitJob(url, TENANT_KEYS.acme, {
      model: MODEL,
      prompt: PROMPT,
      max_tokens: 24,
      temperature: 0,
    });
    assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
    const record = await waitForJob(url, TENANT_KEYS.acme, submitted.body.id!);
    assert.equal(record.status, "succeeded", JSON.stringify(record));
    outcome = { jobId: submitted.body.id!, completion: (record.result as { text: string }).text };
  } finally {
    await Promise.allSettled([worker.stop(), scheduler.stop()]);
    await cleanupPrefix(redisUrl, prefix);
  }
  // Everything both processes printed, shutdown included.
  return { ...outcome, logs: scheduler.text() + worker.text() };
}

/** Where `secret` shows up in `logs`, raw or JSON-escaped (as pino writes strings). */
function leaks(logs: string, secret: string): boolean {
  return logs.includes(secret) || logs.includes(JSON.stringify(secret).slice(1, -1));
}

describe("prompts and completions stay out of the logs", () => {
  let redisUrl: string;
  let models: ModelsDir;
  const runs = new Map<string, RunLogs>();

  before(async () => {
    redisUrl = (await testRedis()).url;
    models = await makeModelsDir();
  });

  after(async () => {
    await models?.remove();
  });

  test("at info, neither the prompt nor the completion is logged by the scheduler or the worker", async () => {
    const run = await runJobAt("info", redisUrl, models);
    runs.set("info", run);
    // The capture works: both processes' info lines are there, naming the job.
    assert.match(run.logs, /"msg":"scheduler listening"/);
    assert.ok(run.logs.includes(run.jobId), "the job id appears in the info logs");
    assert.ok(run.completion.trim().length >= 8, `a completion worth looking for: ${JSON.stringify(run.completion)}`);

    assert.equal(leaks(run.logs, MARKER), false, "the prompt appears in the info logs");
    assert.equal(leaks(run.logs, run.completion.trim()), false, "the completion appears in the info logs");
  });

  test("at debug, the capture holds the processes' debug lines (what the info check would see if a line moved up)", async (t) => {
    const run = await runJobAt("debug", redisUrl, models);
    // Debug lines of both processes (pino level 20) are captured: the job's generation in the worker's slot…
    assert.match(run.logs, /"level":20[^\n]*"msg":"job generated"/);
    assert.ok(run.logs.includes(run.jobId));
    const prompt = leaks(run.logs, MARKER);
    const completion = leaks(run.logs, run.completion.trim());
    t.diagnostic(
      `at debug: prompt ${prompt ? "logged" : "not logged"}, completion ${completion ? "logged" : "not logged"}`,
    );
  });

  test("the check catches a prompt logged at info (as a careless log.info({prompt}) would)", async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = pino({ level: "info" }, sink);
    logger.info({ prompt: PROMPT, text: 'a "quoted"\ncompletion' }, "job received");
    const logs = lines.join("");
    assert.equal(leaks(logs, MARKER), true);
    assert.equal(leaks(logs, 'a "quoted"\ncompletion'), true);
  });
});
