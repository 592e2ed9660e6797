/**
 * Batch ingest benchmark: how fast the scheduler turns a 100,000-line batch file into
 * queued jobs, against raw BullMQ `addBulk` of the same job payloads in the same run,
 * and how much the scheduler's memory grows meanwhile (upload and ingest).
 *
 * - Corral: a scheduler child process (no worker, so nothing runs), `POST /v1/files`
 *   (streamed multipart upload), `POST /v1/batches`, then the time until the batch's
 *   counters say the ingest is done: the structural pass over the file, then the chunked
 *   ingest (one records script + one `addBulk` per lane per chunk of CORRAL_BATCH_CHUNK_LINES, 200).
 * - Baseline: `Queue.addBulk` of the same JobPayloads, 500 at a time, from this process.
 * - Memory: the child's peak RSS (`VmHWM`, reset through `/proc/<pid>/clear_refs` before the
 *   upload, and sampled VmRSS as a fallback) minus its RSS before the upload.
 *
 * Targets: Corral ≥ 50% of raw addBulk; peak RSS growth < 150 MB.
 * Alone: `node --import tsx bench/ingest.ts [--quick] [--lines N] [--runs N] [--profile]` prints a
 * table and writes bench/results/ingest.json. The bench runner calls `benchIngest`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, openAsBlob, realpathSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { Queue } from "bullmq";
import getPort from "get-port";
import { Redis } from "ioredis";
import { RedisKeys, bullPriority, laneName, type JobPayload } from "@corral/shared";
import { startRedisServer } from "../test/support/redis.js";

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(benchDir, "..");
const STORIES = "stories260K";
const CHUNK = 500;

export interface IngestBenchOptions {
  /** A dedicated Redis (it is flushed between runs). @defaultValue a throwaway redis-server */
  redisUrl?: string;
  /** Folder holding stories260K.gguf. @defaultValue CORRAL_MODELS_DIR, CORRAL_TEST_MODELS_DIR or ../shared/models */
  modelsDir?: string;
  /** Lines in the batch file. @defaultValue 100000 (5000 with `quick`) */
  lines?: number;
  /** Measured runs (median reported), after one warm-up run. @defaultValue 3 (1 with `quick`) */
  runs?: number;
  quick?: boolean;
  /** Progress lines. @defaultValue stderr */
  log?: (message: string) => void;
  /** Where the scheduler writes `--cpu-prof` profiles; null: none. @defaultValue null */
  profileDir?: string | null;
}

/** The figures, in the bench runner's shape (corral, baseline, ratio…) plus the named ones. */
export interface IngestBenchResult {
  corral: number;
  baseline: number;
  ratio: number;
  unit: "lines/s";
  target: string;
  met: boolean;
  corral_lines_per_s: number;
  baseline_lines_per_s: number;
  peak_rss_growth_mb: number;
  lines: number;
  runs: number;
  /** Seconds of the structural pass and of the chunked ingest (medians). */
  validate_s: number;
  ingest_s: number;
  upload_mb_per_s: number;
  /** Peak RSS growth during the upload alone, MB. */
  upload_rss_growth_mb: number;
  /** Peak RSS growth of the raw addBulk client, MB (for comparison). */
  baseline_rss_growth_mb: number;
  /** CPU µs per line (medians): the scheduler or the baseline client, and Redis. */
  corral_client_cpu_us_per_line: number;
  corral_redis_cpu_us_per_line: number;
  baseline_client_cpu_us_per_line: number;
  baseline_redis_cpu_us_per_line: number;
  rss_target: string;
  rss_met: boolean;
}

interface RunFigures {
  /** Peak RSS growth while the file uploads (part of peak_rss_growth_mb). */
  upload_rss_growth_mb: number;
  /** Peak RSS growth of this process while it runs the raw addBulk baseline. */
  baseline_rss_growth_mb: number;
  corral_lines_per_s: number;
  baseline_lines_per_s: number;
  /** CPU per line: the scheduler (Corral) or this process (baseline), and the Redis server. */
  corral_client_cpu_us_per_line: number;
  corral_redis_cpu_us_per_line: number;
  baseline_client_cpu_us_per_line: number;
  baseline_redis_cpu_us_per_line: number;
  peak_rss_growth_mb: number;
  validate_s: number;
  ingest_s: number;
  upload_mb_per_s: number;
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const round = (value: number, digits = 2): number => Math.round(value * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const line = (i: number) => ({
  custom_id: `req-${i}`,
  method: "POST",
  url: "/v1/chat/completions",
  body: {
    model: STORIES,
    messages: [
      { role: "system", content: "You are a storyteller." },
      { role: "user", content: `Tell story number ${i} about a cat and a dog.` },
    ],
    max_tokens: 8,
    temperature: 0,
  },
});

/** What the scheduler would queue for line `i`: the same payload shape and size. */
const payload = (i: number, prefix: string, now: number): JobPayload => ({
  id: `batch_${prefix}_${i}`,
  tenant: "default",
  model: STORIES,
  file: `${STORIES}.gguf`,
  source: "batch",
  kind: "chat",
  messages: line(i).body.messages as JobPayload["messages"],
  max_tokens: 8,
  temperature: 0,
  stream: false,
  requirement_bytes: 12_345_678,
  created_at: now,
});

async function writeInput(path: string, lines: number): Promise<number> {
  const out = createWriteStream(path);
  let bytes = 0;
  for (let i = 0; i < lines; i++) {
    const text = `${JSON.stringify(line(i))}\n`;
    bytes += text.length;
    if (!out.write(text)) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
  return bytes;
}

/** Raw BullMQ: addBulk of the payloads, 500 at a time, as the ingest chunks them. */
async function baseline(
  redisUrl: string,
  admin: Redis,
  lines: number,
): Promise<{ rate: number; rssGrowthMb: number; clientCpuUs: number; redisCpuUs: number }> {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue<JobPayload>(laneName(STORIES), { connection, prefix: "{raw}" });
  try {
    await queue.waitUntilReady();
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 20);
    const redisBefore = await redisCpuUs(admin);
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const now = Date.now();
    for (let first = 0; first < lines; first += CHUNK) {
      const entries = [];
      for (let i = first; i < Math.min(lines, first + CHUNK); i++) {
        const data = payload(i, "raw", now);
        entries.push({
          name: "chat",
          data,
          opts: {
            jobId: data.id,
            priority: bullPriority("batch"),
            attempts: 3,
            backoff: { type: "exponential", delay: 1000 },
            removeOnComplete: { age: 3600, count: 10_000 },
            removeOnFail: { age: 86_400 },
          },
        });
      }
      await queue.addBulk(entries);
    }
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    clearInterval(sampler);
    return {
      rate: lines / seconds,
      rssGrowthMb: (Math.max(rssPeak, process.memoryUsage().rss) - rssBefore) / 1024 / 1024,
      clientCpuUs: (cpu.user + cpu.system) / lines,
      redisCpuUs: ((await redisCpuUs(admin)) - redisBefore) / lines,
    };
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

/** Redis server CPU time so far (user + system), µs. */
async function redisCpuUs(admin: Redis): Promise<number> {
  const info = await admin.info("cpu");
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? 0);
  return (field("used_cpu_user") + field("used_cpu_sys")) * 1e6;
}

/** A process's CPU time so far (user + system), µs, from /proc/<pid>/stat (clock ticks of 10 ms). */
async function processCpuUs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

const rssOf = async (pid: number, field: "VmRSS" | "VmHWM"): Promise<number> => {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
};

async function startScheduler(
  env: Record<string, string>,
  port: number,
  profileDir: string | null,
): Promise<ChildProcess> {
  const profile = profileDir
    ? ["--cpu-prof", "--cpu-prof-dir", profileDir, "--cpu-prof-name", `ingest-scheduler-${port}.cpuprofile`]
    : [];
  const child = spawn(process.execPath, [...profile, join(repoRoot, "test/batch/support/scheduler-main.mjs")], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error("the scheduler exited at start");
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return child;
    } catch {
      // not yet listening
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error("the scheduler did not start within 30 s");
    }
    await sleep(50);
  }
}

async function stopScheduler(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  await Promise.race([exited, sleep(15_000).then(() => child.kill("SIGKILL"))]);
}

/** One measured pass: the Corral ingest in a fresh scheduler, then raw addBulk, on a flushed Redis. */
async function runOnce(
  redisUrl: string,
  admin: Redis,
  models: string,
  input: string,
  inputBytes: number,
  lines: number,
  profileDir: string | null,
): Promise<RunFigures> {
  await admin.flushall();
  const prefix = `ingest-${Math.random().toString(16).slice(2, 8)}`;
  const keys = new RedisKeys(prefix);
  const port = await getPort({ host: "127.0.0.1" });
  const dataDir = await mkdtemp(join(tmpdir(), "corral-bench-ingest-data-"));
  const child = await startScheduler(
    {
      CORRAL_REDIS_URL: redisUrl,
      CORRAL_PREFIX: prefix,
      CORRAL_MODELS_DIR: models,
      CORRAL_DATA_DIR: dataDir,
      CORRAL_PORT: String(port),
      CORRAL_LOG_LEVEL: "warn",
      CORRAL_MAX_FILE_LINES: String(Math.max(1_000_000, lines)),
      CORRAL_MAX_FILE_BYTES: String(Math.max(200 * 1024 * 1024, inputBytes * 2)),
      // No worker runs here, so every line stays queued: the tenant's queue caps (10,000 jobs
      // and 256 MiB by default) would make ingest wait for places that never free.
      CORRAL_MAX_QUEUED_PER_TENANT: String(Math.max(10_000, 2 * lines)),
      CORRAL_MAX_QUEUED_BYTES_PER_TENANT: "0",
    },
    port,
    profileDir,
  );
  const url = `http://127.0.0.1:${port}`;
  let sampling = true;
  try {
    const pid = child.pid!;
    await sleep(500); // let start-up settle
    const before = await rssOf(pid, "VmRSS");
    let peak = before;
    let hwmReset = true;
    try {
      await writeFile(`/proc/${pid}/clear_refs`, "5");
    } catch {
      hwmReset = false;
    }
    const sampler = (async () => {
      while (sampling) {
        try {
          peak = Math.max(peak, await rssOf(pid, "VmRSS"));
        } catch {
          return;
        }
        await sleep(20);
      }
    })();

    const form = new FormData();
    form.append("purpose", "batch");
    form.append("file", await openAsBlob(input), "bench.jsonl");
    const uploadStart = performance.now();
    const uploaded = await fetch(`${url}/v1/files`, { method: "POST", body: form });
    if (!uploaded.ok) throw new Error(`upload: ${uploaded.status} ${await uploaded.text()}`);
    const uploadS = (performance.now() - uploadStart) / 1000;
    const uploadPeak = Math.max(peak, hwmReset ? await rssOf(pid, "VmHWM") : 0);
    const file = (await uploaded.json()) as { id: string };

    const counts = (id: string) => keys.batchCounts(id);
    const redisBefore = await redisCpuUs(admin);
    const cpuBefore = await processCpuUs(pid);
    const started = performance.now();
    const created = await fetch(`${url}/v1/batches`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" }),
    });
    if (!created.ok) throw new Error(`create: ${created.status} ${await created.text()}`);
    const batch = (await created.json()) as { id: string };
    let validated: number | null = null;
    for (;;) {
      const [total, done] = await admin.hmget(counts(batch.id), "total", "ingest_done");
      if (validated === null && Number(total ?? 0) > 0) validated = performance.now();
      if (done === "1") break;
      const status = JSON.parse((await admin.get(keys.batch(batch.id))) ?? "{}") as { status?: string };
      if (status.status === "failed") throw new Error(`the batch failed: ${JSON.stringify(status)}`);
      await sleep(5);
    }
    const finished = performance.now();
    const schedulerCpu = (await processCpuUs(pid)) - cpuBefore;
    const redisCpu = (await redisCpuUs(admin)) - redisBefore;
    sampling = false;
    await sampler;
    const hwm = hwmReset ? await rssOf(pid, "VmHWM") : peak;
    // Fair claim holds every queued job in the lane's delayed set until a slot releases it.
    const queued = await admin.zcard(`${keys.prefix}:${laneName(STORIES)}:delayed`);
    if (queued !== lines) throw new Error(`expected ${lines} queued jobs, found ${queued}`);
    await stopScheduler(child);

    await admin.flushall();
    const raw = await baseline(redisUrl, admin, lines);
    return {
      corral_lines_per_s: lines / ((finished - started) / 1000),
      baseline_lines_per_s: raw.rate,
      corral_client_cpu_us_per_line: schedulerCpu / lines,
      corral_redis_cpu_us_per_line: redisCpu / lines,
      baseline_client_cpu_us_per_line: raw.clientCpuUs,
      baseline_redis_cpu_us_per_line: raw.redisCpuUs,
      peak_rss_growth_mb: (Math.max(hwm, peak) - before) / 1024 / 1024,
      upload_rss_growth_mb: (uploadPeak - before) / 1024 / 1024,
      baseline_rss_growth_mb: raw.rssGrowthMb,
      validate_s: ((validated ?? finished) - started) / 1000,
      ingest_s: (finished - (validated ?? started)) / 1000,
      upload_mb_per_s: inputBytes / 1024 / 1024 / uploadS,
    };
  } finally {
    sampling = false;
    await stopScheduler(child);
    await rm(dataDir, { recursive: true, force: true });
  }
}

function defaultModelsDir(): string {
  return process.env.CORRAL_MODELS_DIR ?? process.env.CORRAL_TEST_MODELS_DIR ?? resolve(repoRoot, "../shared/models");
}

/** Runs the benchmark: one warm-up pass, then `runs` measured ones; medians reported. */
export async function benchIngest(options: IngestBenchOptions = {}): Promise<IngestBenchResult> {
  const quick = options.quick ?? false;
  const lines = options.lines ?? (quick ? 5000 : 100_000);
  const runs = options.runs ?? (quick ? 1 : 3);
  const log = options.log ?? ((message: string) => process.stderr.write(`${message}\n`));
  const ownRedis = options.redisUrl === undefined ? await startRedisServer() : null;
  const redisUrl = options.redisUrl ?? ownRedis!.url;
  const admin = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const work = await mkdtemp(join(tmpdir(), "corral-bench-ingest-"));
  try {
    const models = join(work, "models");
    await mkdir(models);
    await symlink(join(options.modelsDir ?? defaultModelsDir(), `${STORIES}.gguf`), join(models, `${STORIES}.gguf`));
    const input = join(work, "input.jsonl");
    const bytes = await writeInput(input, lines);
    log(`batch_ingest: ${lines} lines (${(bytes / 1024 / 1024).toFixed(1)} MiB), 1 warm-up + ${runs} runs`);
    const results: RunFigures[] = [];
    for (let run = 0; run <= runs; run++) {
      const figures = await runOnce(redisUrl, admin, models, input, bytes, lines, options.profileDir ?? null);
      log(
        `  ${run === 0 ? "warm-up" : `run ${run}`}: corral ${Math.round(figures.corral_lines_per_s)} lines/s, ` +
          `raw addBulk ${Math.round(figures.baseline_lines_per_s)} lines/s, peak RSS +${figures.peak_rss_growth_mb.toFixed(1)} MB (upload +${figures.upload_rss_growth_mb.toFixed(1)}, raw client +${figures.baseline_rss_growth_mb.toFixed(1)}); ` +
          `CPU µs/line: scheduler ${figures.corral_client_cpu_us_per_line.toFixed(0)} + redis ${figures.corral_redis_cpu_us_per_line.toFixed(0)}, ` +
          `raw client ${figures.baseline_client_cpu_us_per_line.toFixed(0)} + redis ${figures.baseline_redis_cpu_us_per_line.toFixed(0)}`,
      );
      if (run > 0) results.push(figures);
    }
    const pick = (key: keyof RunFigures) => median(results.map((r) => r[key]));
    const corral = pick("corral_lines_per_s");
    const raw = pick("baseline_lines_per_s");
    const ratio = corral / raw;
    const rss = pick("peak_rss_growth_mb");
    return {
      corral: Math.round(corral),
      baseline: Math.round(raw),
      ratio: round(ratio, 3),
      unit: "lines/s",
      target: "ratio >= 0.80 (#21; 0.50 before); peak RSS growth < 150 MB",
      met: ratio >= 0.8 && rss < 150,
      corral_lines_per_s: Math.round(corral),
      baseline_lines_per_s: Math.round(raw),
      peak_rss_growth_mb: round(rss, 1),
      lines,
      runs,
      validate_s: round(pick("validate_s"), 2),
      ingest_s: round(pick("ingest_s"), 2),
      upload_mb_per_s: round(pick("upload_mb_per_s"), 1),
      upload_rss_growth_mb: round(pick("upload_rss_growth_mb"), 1),
      baseline_rss_growth_mb: round(pick("baseline_rss_growth_mb"), 1),
      corral_client_cpu_us_per_line: round(pick("corral_client_cpu_us_per_line"), 1),
      corral_redis_cpu_us_per_line: round(pick("corral_redis_cpu_us_per_line"), 1),
      baseline_client_cpu_us_per_line: round(pick("baseline_client_cpu_us_per_line"), 1),
      baseline_redis_cpu_us_per_line: round(pick("baseline_redis_cpu_us_per_line"), 1),
      rss_target: "< 150 MB",
      rss_met: rss < 150,
    };
  } finally {
    admin.disconnect();
    await ownRedis?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

function formatResult(result: IngestBenchResult): string {
  const rows = [
    ["figure", "corral", "baseline", "ratio", "target", "result"],
    [
      "ingest rate (lines/s)",
      String(result.corral_lines_per_s),
      String(result.baseline_lines_per_s),
      String(result.ratio),
      ">= 0.50",
      result.ratio >= 0.5 ? "met" : "MISSED",
    ],
    ["peak RSS growth (MB)", String(result.peak_rss_growth_mb), "", "", "< 150", result.rss_met ? "met" : "MISSED"],
  ];
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  const fmt = (row: string[]) => `| ${row.map((cell, col) => cell.padEnd(widths[col]!)).join(" | ")} |`;
  return [fmt(rows[0]!), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.slice(1).map(fmt)].join("\n");
}

async function alone(argv: readonly string[]): Promise<void> {
  const quick = argv.includes("--quick");
  const value = (flag: string) => {
    const at = argv.indexOf(flag);
    return at >= 0 && argv[at + 1] !== undefined ? Number(argv[at + 1]) : undefined;
  };
  const linesArg = value("--lines");
  const runsArg = value("--runs");
  const result = await benchIngest({
    quick,
    ...(linesArg !== undefined ? { lines: linesArg } : {}),
    ...(runsArg !== undefined ? { runs: runsArg } : {}),
    ...(process.env.CORRAL_BENCH_REDIS_URL ? { redisUrl: process.env.CORRAL_BENCH_REDIS_URL } : {}),
    ...(argv.includes("--profile") ? { profileDir: join(benchDir, "results", "profiles") } : {}),
  });
  console.log(formatResult(result));
  console.log(
    `validate ${result.validate_s} s + ingest ${result.ingest_s} s for ${result.lines} lines; upload ${result.upload_mb_per_s} MiB/s`,
  );
  const out = join(benchDir, "results", "ingest.json");
  await mkdir(dirname(out), { recursive: true });
  const machine = { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, node: process.version };
  await writeFile(
    out,
    `${JSON.stringify({ machine, date: new Date().toISOString(), batch_ingest: result }, null, 2)}\n`,
  );
  console.log(`wrote ${out}`);
}

const entry = process.argv[1];
if (entry && realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url))) {
  alone(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
