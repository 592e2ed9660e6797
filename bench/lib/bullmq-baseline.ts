import { fork, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { Queue, QueueEvents } from "bullmq";
import { stopChild, STORIES } from "./corral-stack.js";
import { sleep } from "./stats.js";

export interface BullJobBody {
  prompt: string;
  max_tokens: number;
}

/** One job as the raw BullMQ producer saw it (ms since the epoch). */
export interface BullJobTiming {
  submitAt: number;
  /** When Queue.add resolved. */
  acceptedAt: number;
  /** When the processor started (the worker's clock, the same machine's). */
  claimedAt: number;
  finishedAt: number;
  /** When the producer's QueueEvents saw "completed". */
  resultAt: number;
  completionTokens: number;
  generationMs: number;
}

export interface BullBaselineOptions {
  redisUrl: string;
  modelsDir: string;
  prefix: string;
  label: string;
  logDir: string;
  sequences: number;
}

/** The same retention and retry settings Corral gives its jobs; no priority (plain BullMQ use). */
export const JOB_OPTIONS = {
  attempts: 3,
  backoff: { type: "exponential", delay: 1000 },
  removeOnComplete: { age: 3600, count: 10_000 },
  removeOnFail: { age: 86_400 },
} as const;

/**
 * The raw BullMQ baseline: `Queue.add` in this process, a plain BullMQ `Worker` running the
 * same generation in a child process (as a Corral slot runs in its own), and `QueueEvents`
 * to learn of each result.
 */
export class BullBaseline {
  readonly #queue: Queue<BullJobBody>;
  readonly #events: QueueEvents;
  readonly #connection: Redis;
  readonly #eventsConnection: Redis;
  readonly #child: ChildProcess;
  readonly #waiters = new Map<string, (value: unknown) => void>();
  #closed: Promise<void> | null = null;

  private constructor(
    queue: Queue<BullJobBody>,
    events: QueueEvents,
    connections: { producer: Redis; events: Redis },
    child: ChildProcess,
  ) {
    this.#queue = queue;
    this.#events = events;
    this.#connection = connections.producer;
    this.#eventsConnection = connections.events;
    this.#child = child;
    events.on("completed", ({ jobId, returnvalue }) => {
      const waiter = this.#waiters.get(jobId);
      if (!waiter) return;
      this.#waiters.delete(jobId);
      waiter(typeof returnvalue === "string" ? JSON.parse(returnvalue) : returnvalue);
    });
  }

  /** The worker process's pid (CPU accounting). */
  get workerPid(): number | undefined {
    return this.#child.pid;
  }

  static async start(o: BullBaselineOptions): Promise<BullBaseline> {
    const name = "bench-bullmq";
    const log = openSync(join(o.logDir, `${o.label}-bullmq-worker.log`), "a");
    const child = fork(fileURLToPath(new URL("./entries/bullmq-worker-entry.ts", import.meta.url)), [], {
      execArgv: ["--import", "tsx"],
      env: {
        PATH: process.env.PATH,
        BENCH_REDIS_URL: o.redisUrl,
        BENCH_PREFIX: o.prefix,
        BENCH_QUEUE: name,
        BENCH_SEQUENCES: String(o.sequences),
        BENCH_MODEL_PATH: join(o.modelsDir, `${STORIES}.gguf`),
      },
      stdio: ["ignore", log, log, "ipc"],
    });
    closeSync(log);
    await new Promise<void>((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`the BullMQ baseline worker exited with ${code}`)));
      child.on("message", (message: { type?: string }) => {
        if (message.type === "ready") resolve();
      });
    });
    const connection = new Redis(o.redisUrl, { maxRetriesPerRequest: null, connectionName: "bullmq-producer" });
    const queue = new Queue<BullJobBody>(name, { connection, prefix: o.prefix });
    const eventsConnection = connection.duplicate({ connectionName: "bullmq-events" });
    // From the stream's start (the queue is new, so nothing old is replayed): QueueEvents
    // is "ready" before its first XREAD, and reading from "$" then lost the completions of
    // jobs that finished in between, so a run that started at once never ended.
    const events = new QueueEvents(name, { connection: eventsConnection, prefix: o.prefix, lastEventId: "0-0" });
    await events.waitUntilReady();
    await queue.waitUntilReady();
    return new BullBaseline(queue, events, { producer: connection, events: eventsConnection }, child);
  }

  /** Adds every job (open loop at `ratePerSecond`, else all at once) and resolves when each completed. */
  async runJobs(
    bodies: readonly BullJobBody[],
    ratePerSecond?: number,
  ): Promise<{ wallMs: number; jobs: BullJobTiming[] }> {
    const started = Date.now();
    const results: Promise<BullJobTiming>[] = [];
    let counter = 0;
    const one = async (body: BullJobBody): Promise<BullJobTiming> => {
      const id = `${process.pid}-${started}-${++counter}`;
      const done = new Promise<unknown>((resolve) => this.#waiters.set(id, resolve));
      const submitAt = Date.now();
      await this.#queue.add("completion", body, { ...JOB_OPTIONS, jobId: id });
      const acceptedAt = Date.now();
      const value = (await done) as {
        claimedAt: number;
        finishedAt: number;
        completion_tokens: number;
        generation_ms: number;
      };
      return {
        submitAt,
        acceptedAt,
        claimedAt: value.claimedAt,
        finishedAt: value.finishedAt,
        resultAt: Date.now(),
        completionTokens: value.completion_tokens,
        generationMs: value.generation_ms,
      };
    };
    if (ratePerSecond !== undefined) {
      const interval = 1000 / ratePerSecond;
      const t0 = performance.now();
      for (const [i, body] of bodies.entries()) {
        const ahead = t0 + i * interval - performance.now();
        if (ahead >= 1) await sleep(ahead);
        const job = one(body);
        job.catch(() => undefined);
        results.push(job);
      }
    } else {
      for (const body of bodies) results.push(one(body));
    }
    const jobs = await Promise.all(results);
    return { wallMs: Date.now() - started, jobs };
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      try {
        await this.#events.close();
        await this.#queue.close();
      } finally {
        this.#connection.disconnect();
        this.#eventsConnection.disconnect();
        if (this.#child.connected) this.#child.send({ type: "stop" });
        await stopChild(this.#child, "SIGTERM", 15_000);
      }
    })();
    return this.#closed;
  }
}
