/**
 * The raw BullMQ baseline's worker process: a plain BullMQ `Worker` with a processor that
 * runs the job's completion on node-llama-cpp (same model, sequences = concurrency,
 * threads 1). It returns when it claimed the job, so the producer can measure dispatch.
 * Configured by BENCH_* variables; "ready" over IPC once connected.
 */
import { Redis } from "ioredis";
import { Worker } from "bullmq";
import { DirectEngine } from "../direct-engine.js";

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const sequences = Number(env("BENCH_SEQUENCES"));
const engine = await DirectEngine.create({ modelPath: env("BENCH_MODEL_PATH"), slots: 1, sequences, threads: 1 });
const connection = new Redis(env("BENCH_REDIS_URL"), { maxRetriesPerRequest: null, connectionName: "bullmq-baseline" });

interface Data {
  prompt: string;
  max_tokens: number;
}

const worker = new Worker<Data>(
  env("BENCH_QUEUE"),
  async (job) => {
    const claimedAt = Date.now();
    const { completionTokens, generationMs } = await engine.runOne(job.data.prompt, job.data.max_tokens);
    return { claimedAt, finishedAt: Date.now(), completion_tokens: completionTokens, generation_ms: generationMs };
  },
  { connection, prefix: env("BENCH_PREFIX"), concurrency: sequences },
);
worker.on("error", (error) => console.error("bullmq worker error:", error));
await worker.waitUntilReady();

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  worker
    .close()
    .then(() => engine.dispose())
    .then(() => connection.quit())
    .then(
      () => process.exit(0),
      () => process.exit(1),
    );
};
process.on("message", (message: { type?: string }) => {
  if (message.type === "stop") stop();
});
process.on("disconnect", stop);
process.on("SIGTERM", stop);
process.send?.({ type: "ready" });
