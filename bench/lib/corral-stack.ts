import { fork, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdtemp, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { RedisKeys } from "@corral/shared";
import { sleep } from "./stats.js";

export const STORIES = "stories260K";

export interface StackOptions {
  redisUrl: string;
  /** Folder holding stories260K.gguf. */
  modelsDir: string;
  /** The one model of the catalog. @defaultValue stories260K.gguf in `modelsDir` */
  modelPath?: string;
  /**
   * A models folder to use as it is (the cluster simulator's catalog of many links), instead
   * of one holding a link to `modelPath`. @defaultValue none
   */
  catalogDir?: string;
  /** One GPU slot (GPU 0, full offload) instead of `slots` CPU slots. @defaultValue false */
  gpu?: boolean;
  /** Key prefix of this stack (fresh per stack). */
  prefix: string;
  /** Name for log and profile files. */
  label: string;
  logDir: string;
  profileDir: string | null;
  /** Worker slots (processes); 0: no worker (HTTP submit benchmark). */
  slots: number;
  /** Sequences per loaded model (CORRAL_SEQUENCES). */
  sequences: number;
  /** Context size per sequence. @defaultValue 512 */
  contextSize?: number;
  /** llama.cpp threads per slot; null: no CORRAL_THREADS (the worker's own default). @defaultValue 1 */
  threads?: number | null;
  /** @defaultValue "info" (the default deployment level) */
  logLevel?: string;
  /** CORRAL_MAX_QUEUED_PER_TENANT. @defaultValue 100000000 (the HTTP benchmark queues many jobs) */
  maxQueuedPerTenant?: number;
  /** More scheduler settings (e.g. CORRAL_API_KEYS for several tenants, CORRAL_REDIS_WAIT_REPLICAS). @defaultValue none */
  schedulerEnv?: Readonly<Record<string, string>>;
  /** More worker settings. @defaultValue none */
  workerEnv?: Readonly<Record<string, string>>;
}

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/** A folder holding only a link to one GGUF: the catalog then has exactly that model. */
export async function singleModelDir(modelPath: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "corral-bench-models-"));
  await symlink(resolve(modelPath), join(dir, basename(modelPath)));
  return dir;
}

/** The catalog id of a GGUF file: its name without `.gguf`. */
export const modelIdOf = (modelPath: string): string => basename(modelPath).replace(/\.gguf$/i, "");

/**
 * A running Corral on the bench Redis: the scheduler in one child process (with the
 * hello-world reference app), and unless `slots` is 0, a worker in another (its
 * supervisor forks one process per slot), both exactly as deployed, logging at `info`
 * to files in `logDir`. `profileDir` adds `--cpu-prof` to every Corral process.
 */
export class CorralStack {
  readonly url: string;
  readonly helloUrl: string;
  readonly keys: RedisKeys;
  readonly options: StackOptions;
  readonly #scheduler: ChildProcess;
  readonly #worker: ChildProcess | null;
  #closed: Promise<void> | null = null;

  private constructor(
    options: StackOptions,
    parts: { url: string; helloUrl: string; scheduler: ChildProcess; worker: ChildProcess | null },
  ) {
    this.options = options;
    this.url = parts.url;
    this.helloUrl = parts.helloUrl;
    this.keys = new RedisKeys(options.prefix);
    this.#scheduler = parts.scheduler;
    this.#worker = parts.worker;
  }

  static async start(options: StackOptions): Promise<CorralStack> {
    const models =
      options.catalogDir ?? (await singleModelDir(options.modelPath ?? join(options.modelsDir, `${STORIES}.gguf`)));
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      CORRAL_REDIS_URL: options.redisUrl,
      CORRAL_PREFIX: options.prefix,
      CORRAL_MODELS_DIR: models,
      CORRAL_LOG_LEVEL: options.logLevel ?? "info",
    };
    const execArgv = ["--import", "tsx"];
    // One folder per process kind; node names each file CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile
    // (the tsx loader thread gets its own file beside the main thread's).
    const profile = (name: string) =>
      options.profileDir
        ? ["--cpu-prof", `--cpu-prof-dir=${join(options.profileDir, `${options.label}-${name}`)}`]
        : [];

    const schedulerLog = openSync(join(options.logDir, `${options.label}-scheduler.log`), "a");
    const scheduler = fork(here("./entries/scheduler-entry.ts"), [], {
      execArgv: [...execArgv, ...profile("scheduler")],
      env: {
        ...env,
        CORRAL_PORT: "0",
        CORRAL_HOST: "127.0.0.1",
        CORRAL_SEQUENCES: String(options.sequences),
        CORRAL_CONTEXT_SIZE: String(options.contextSize ?? 512),
        CORRAL_MAX_QUEUED_PER_TENANT: String(options.maxQueuedPerTenant ?? 100_000_000),
        // One bench tenant long-polls every job it measures at once.
        CORRAL_MAX_STREAMS_PER_TENANT: "1000000",
        ...options.schedulerEnv,
      },
      stdio: ["ignore", schedulerLog, schedulerLog, "ipc"],
    });
    closeSync(schedulerLog);
    let worker: ChildProcess | null = null;
    try {
      const { url, helloUrl } = await readyMessage(scheduler, 60_000);
      if (options.slots > 0) {
        const workerLog = openSync(join(options.logDir, `${options.label}-worker.log`), "a");
        // node refuses --cpu-prof in NODE_OPTIONS, and the supervisor forks its slots with
        // their own command line: a preloaded inspector profiler covers every worker process.
        const profiling = options.profileDir
          ? {
              NODE_OPTIONS: `--import=${new URL("./cpu-profile.mjs", import.meta.url).href}`,
              BENCH_CPU_PROFILE_DIR: join(options.profileDir, `${options.label}-worker`),
            }
          : {};
        worker = fork(here("./entries/worker-entry.ts"), [], {
          execArgv: [...execArgv],
          env: {
            ...env,
            ...profiling,
            ...(options.gpu
              ? { CORRAL_CPU: "false", CORRAL_GPUS: "0" }
              : { CORRAL_CPU: "true", CORRAL_CPU_SLOTS: String(options.slots) }),
            ...(options.threads === null ? {} : { CORRAL_THREADS: String(options.threads ?? 1) }),
            CORRAL_WORKER_ID: "bench",
            CORRAL_WORKER_METRICS_PORT: "0",
            // Nothing is left running when a stack closes; a short drain keeps stops quick.
            CORRAL_DRAIN_MS: "5000",
            ...options.workerEnv,
          },
          stdio: ["ignore", workerLog, workerLog, "ipc"],
        });
        closeSync(workerLog);
        await waitForSlots(options.redisUrl, new RedisKeys(options.prefix), options.slots, worker, 120_000);
      }
      return new CorralStack(options, { url, helloUrl, scheduler, worker });
    } catch (error) {
      await stopChild(worker, "SIGTERM", 10_000);
      await stopChild(scheduler, "SIGTERM", 10_000);
      throw error;
    }
  }

  /** The worker supervisor's pid (its slot processes are its children); undefined without slots. */
  get workerPid(): number | undefined {
    return this.#worker?.pid;
  }

  /** The scheduler process's pid (CPU accounting). */
  get schedulerPid(): number | undefined {
    return this.#scheduler.pid;
  }

  /** Stops the worker (its slots drain) and the scheduler. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await stopChild(this.#worker, "SIGTERM", 30_000);
      if (this.#scheduler.connected) this.#scheduler.send({ type: "stop" });
      await stopChild(this.#scheduler, "SIGTERM", 15_000);
    })();
    return this.#closed;
  }
}

function readyMessage(child: ChildProcess, timeoutMs: number): Promise<{ url: string; helloUrl: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the bench scheduler did not start in time")), timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the bench scheduler exited with ${code} before it was ready (see its log)`));
    });
    child.on("message", (message: { type?: string; url?: string; helloUrl?: string }) => {
      if (message.type !== "ready" || !message.url || !message.helloUrl) return;
      clearTimeout(timer);
      resolve({ url: message.url, helloUrl: message.helloUrl });
    });
  });
}

/** Waits until `slots` slots have written their heartbeat. */
async function waitForSlots(
  redisUrl: string,
  keys: RedisKeys,
  slots: number,
  worker: ChildProcess,
  timeoutMs: number,
): Promise<void> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, connectionName: "bench-wait" });
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (worker.exitCode !== null) throw new Error(`the bench worker exited with ${worker.exitCode} (see its log)`);
      const ids = await redis.smembers(keys.workers);
      const alive = ids.length > 0 ? (await redis.mget(ids.map((id) => keys.worker(id)))).filter(Boolean).length : 0;
      if (alive >= slots) return;
      if (Date.now() > deadline) throw new Error(`only ${alive} of ${slots} worker slots came up`);
      await sleep(100);
    }
  } finally {
    redis.disconnect();
  }
}

/** Signals a child and waits for it to exit; SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess | null, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const killed = await Promise.race([
    exited.then(() => false),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs))),
  ]);
  clearTimeout(timer);
  if (killed) {
    child.kill("SIGKILL");
    await exited;
  }
}
