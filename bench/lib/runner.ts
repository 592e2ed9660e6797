import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { BenchRedis } from "./bench-redis.js";
import { modelIdOf } from "./corral-stack.js";
import { machineInfo } from "./machine.js";
import { formatTable } from "./table.js";
import type { BenchDefinition, BenchOptions, BenchReport, BenchResult } from "./types.js";

const benchDir = fileURLToPath(new URL("..", import.meta.url));
const repoRoot = resolve(benchDir, "..");
export const LATEST = join(benchDir, "results", "latest.json");

/** Every benchmark, in the order `npm run bench` runs them. Loaded lazily. */
export const BENCHMARKS: BenchDefinition[] = [
  {
    name: "e2e_throughput",
    title: "End-to-end tokens/s vs direct node-llama-cpp",
    run: async (o) => (await import("../e2e-throughput.js")).benchE2eThroughput(o),
  },
  {
    name: "dispatch_latency",
    title: "Dispatch p99 submit→claim vs raw BullMQ (100/s)",
    run: async (o) => (await import("../dispatch-latency.js")).benchDispatchLatency(o),
  },
  {
    name: "claim_saturation",
    title: "Highest offered rate with claim p99 < 50 ms vs raw BullMQ",
    run: async (o) => (await import("../claim-saturation.js")).benchClaimSaturation(o),
  },
  {
    name: "redis_cost",
    title: "Redis commands per job vs raw BullMQ",
    run: async (o) => (await import("../redis-cost.js")).benchRedisCost(o),
  },
  {
    name: "scaling",
    title: "Scaling: slots × sequences",
    run: async (o) => (await import("../scaling.js")).benchScaling(o),
  },
  {
    name: "http_submit",
    title: "HTTP POST /v1/jobs vs a hello-world route on the same server",
    run: async (o) => (await import("../http-submit.js")).benchHttpSubmit(o),
  },
  {
    name: "crash_recovery",
    title: "Crash recovery: slot SIGKILL → rerun start, default settings",
    run: async (o) => (await import("../crash-recovery.js")).benchCrashRecovery(o),
  },
  {
    name: "fairness",
    title: "Fairness: issue 15's scenario (B, C p95 wait behind A's backlog) vs the ideal scheduler",
    run: async (o) => (await import("../fairness.js")).benchFairness(o),
  },
  {
    name: "prompt_length",
    title: "Counting a prompt's tokens at submit (scheduler), ms per request",
    run: async (o) => (await import("../prompt-length.js")).benchPromptLength(o),
  },
  {
    name: "replica_wait",
    title: "Submits with WAIT for one replica vs none (CORRAL_REDIS_WAIT_REPLICAS)",
    run: async (o) => (await import("../replica-wait.js")).benchReplicaWait(o),
  },
  {
    name: "redis_ceiling",
    title: "One Redis's ceiling: tiny jobs at rising offered rates until something saturates",
    run: async (o) => (await import("../redis-ceiling.js")).benchRedisCeiling(o),
  },
  {
    name: "cluster_sim",
    title: "Cluster simulator: simulated slots × models on one Redis vs raw BullMQ (issue 21)",
    run: async (o) => (await import("../cluster-sim.js")).benchClusterSim(o),
  },
  {
    name: "thread_default",
    title: "CPU threads out of the box (no CORRAL_THREADS) vs the best fixed count",
    run: async (o) => (await import("../thread-default.js")).benchThreadDefault(o),
  },
  {
    name: "transcription_rtf",
    title: "Transcription real-time factor through a worker slot vs @napi-rs/whisper called directly",
    run: async (o) => (await import("../transcription-rtf.js")).benchTranscriptionRtf(o),
  },
  {
    name: "prefix_reuse",
    title: "Prompt-prefix reuse: 300 prompts sharing a 400-token system prompt, reuse on vs off",
    run: async (o) => (await import("../prefix-reuse.js")).benchPrefixReuse(o),
  },
];

/** bench/ingest.ts (batch ingest, written with the batch API) joins the run when it exists. */
async function ingestBenchmark(): Promise<BenchDefinition | null> {
  if (!existsSync(join(benchDir, "ingest.ts"))) return null;
  return {
    name: "batch_ingest",
    title: "Batch ingest",
    run: async (o) => {
      const module = (await import(pathToFileURL(join(benchDir, "ingest.ts")).href)) as {
        benchIngest?: (options: BenchOptions) => Promise<BenchResult>;
      };
      if (typeof module.benchIngest !== "function") throw new Error("bench/ingest.ts does not export benchIngest");
      return module.benchIngest(o);
    },
  };
}

export interface RunnerArgs {
  names: string[];
  quick: boolean;
  runs: number | null;
  profile: boolean;
  out: string | null;
}

export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): RunnerArgs {
  const args: RunnerArgs = {
    names: [],
    quick: env.CORRAL_BENCH_QUICK === "1" || env.CORRAL_BENCH_QUICK === "true",
    runs: null,
    profile: false,
    out: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--quick") args.quick = true;
    else if (arg === "--profile") args.profile = true;
    else if (arg === "--runs") args.runs = Number(argv[++i]);
    else if (arg.startsWith("--runs=")) args.runs = Number(arg.slice("--runs=".length));
    else if (arg === "--out") args.out = argv[++i] ?? null;
    else if (arg.startsWith("--out=")) args.out = arg.slice("--out=".length);
    else if (arg === "--help" || arg === "-h") throw new UsageError("");
    else if (arg.startsWith("-")) throw new UsageError(`unknown option ${arg}`);
    else args.names.push(arg);
  }
  if (args.runs !== null && (!Number.isInteger(args.runs) || args.runs < 1))
    throw new UsageError("--runs expects a positive integer");
  return args;
}

class UsageError extends Error {}

const USAGE = `usage: npm run bench -- [benchmark…] [--quick] [--runs N] [--profile] [--out FILE]
  benchmarks: e2e_throughput dispatch_latency claim_saturation redis_cost scaling http_submit crash_recovery
              prompt_length fairness replica_wait redis_ceiling cluster_sim thread_default
              transcription_rtf prefix_reuse
              (batch_ingest when bench/ingest.ts exists)
  --quick      a tiny run (a handful of jobs, one measured run); also CORRAL_BENCH_QUICK=1
  --runs N     measured runs per figure (median reported; default 3, quick 1)
  --profile    --cpu-prof every scheduler and worker process into bench/results/profiles/
  --out FILE   write the JSON there; default bench/results/latest.json (a full run replaces it,
               a subset updates its keys), or bench/results/quick.json for --quick
  CORRAL_BENCH_SIM_SIZES=100x10,500x100   cluster_sim at these sizes (slots x models) only`;

/** The models folder: CORRAL_MODELS_DIR, else CORRAL_TEST_MODELS_DIR, else ../shared/models beside the checkout. */
function modelsDir(env: NodeJS.ProcessEnv): string {
  const dir = env.CORRAL_MODELS_DIR ?? env.CORRAL_TEST_MODELS_DIR ?? resolve(repoRoot, "../shared/models");
  if (!existsSync(join(dir, "stories260K.gguf")))
    throw new UsageError(
      `stories260K.gguf not found in ${dir}; set CORRAL_MODELS_DIR to the folder holding the tiny models`,
    );
  return dir;
}

/** Runs the benchmarks named in `argv` (all when none), prints the table, writes the JSON. Returns the exit code. */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let args: RunnerArgs;
  let models: string;
  try {
    args = parseArgs(argv, env);
    models = modelsDir(env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    if (error.message) console.error(`bench: ${error.message}`);
    console.error(USAGE);
    return 2;
  }
  const modelPath = env.CORRAL_BENCH_MODEL ?? join(models, "stories260K.gguf");
  if (!existsSync(modelPath)) {
    console.error(`bench: CORRAL_BENCH_MODEL ${modelPath} does not exist`);
    return 2;
  }
  const model = { id: modelIdOf(modelPath), path: resolve(modelPath) };
  const ingest = await ingestBenchmark();
  const all = ingest ? [...BENCHMARKS, ingest] : BENCHMARKS;
  const unknown = args.names.filter((name) => !all.some((b) => b.name === name));
  if (unknown.length > 0) {
    console.error(`bench: unknown benchmark ${unknown.join(", ")}\n${USAGE}`);
    return 2;
  }
  const selected = args.names.length === 0 ? all : all.filter((b) => args.names.includes(b.name));
  const runs = args.runs ?? (args.quick ? 1 : 3);
  const log = (message: string) => process.stderr.write(`${message}\n`);
  const logDir = await mkdtemp(join(tmpdir(), "corral-bench-logs-"));
  const profileDir = args.profile ? join(benchDir, "results", "profiles") : null;
  if (profileDir) await mkdir(profileDir, { recursive: true });
  log(
    `bench: ${selected.map((b) => b.name).join(", ")}${args.quick ? " (quick)" : ""}, ${runs} run(s) each; logs in ${logDir}`,
  );

  const started = Date.now();
  const redis = await BenchRedis.start();
  const report: BenchReport = {
    machine: machineInfo(await redis.version()),
    quick: args.quick,
    runs,
    duration_s: 0,
  };
  let failed = false;
  try {
    for (const bench of selected) {
      log(`bench: ${bench.name}: ${bench.title}`);
      await redis.flush();
      await redis.resetStats();
      const options: BenchOptions = {
        quick: args.quick,
        model,
        gpu: env.CORRAL_BENCH_GPU === "1" || env.CORRAL_BENCH_GPU === "true",
        threads: Number(env.CORRAL_BENCH_THREADS ?? 1),
        jobs: env.CORRAL_BENCH_JOBS ? Number(env.CORRAL_BENCH_JOBS) : null,
        simSizes: env.CORRAL_BENCH_SIM_SIZES || null,
        redis,
        redisUrl: redis.url,
        modelsDir: models,
        runs,
        profileDir,
        logDir,
        log,
      };
      const t0 = Date.now();
      try {
        const result = await bench.run(options);
        report[bench.name] = {
          ...result,
          measured_at: new Date().toISOString(),
          seconds: Math.round((Date.now() - t0) / 1000),
        };
      } catch (error) {
        failed = true;
        log(`bench: ${bench.name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        report[bench.name] = { error: error instanceof Error ? error.message : String(error) };
      }
    }
  } finally {
    await redis.stop();
  }
  report.duration_s = Math.round((Date.now() - started) / 1000);

  const out = args.out ?? (args.quick ? join(benchDir, "results", "quick.json") : LATEST);
  let written: BenchReport = report;
  if (args.names.length > 0 && args.out === null && !args.quick && existsSync(out)) {
    // A subset updates its own keys in latest.json and keeps the others.
    const previous = JSON.parse(await readFile(out, "utf8")) as BenchReport;
    written = { ...previous, ...report, duration_s: previous.duration_s };
  }
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(written, null, 2)}\n`);
  console.log(
    formatTable(
      report,
      selected.map((b) => b.name),
    ),
  );
  // A benchmark with a table of its own (the cluster simulator's scale table) prints it below.
  for (const bench of selected) {
    const table = (report[bench.name] as { table?: unknown } | undefined)?.table;
    if (typeof table === "string") console.log(`\n${bench.name}:\n${table}`);
  }
  log(`bench: wrote ${out} in ${report.duration_s} s`);
  return failed ? 1 : 0;
}
