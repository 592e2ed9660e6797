/**
 * One process of the cluster simulator's raw BullMQ baseline: for each simulated slot, a
 * Redis connection and plain BullMQ `Worker`s on that slot's lanes (concurrency: the
 * slot's sequences) whose processor sleeps as long as the engine stand-in would
 * (`max_tokens` at the token rate). Speaks the IPC protocol of sim-slots-entry.ts.
 */
import { Redis } from "ioredis";
import { Worker } from "bullmq";
import type { SimJobEvent } from "../sim-engine.js";
import type { SimSlotsReply } from "./sim-slots-entry.js";

export interface SimBullStart {
  type: "start";
  redisUrl: string;
  prefix: string;
  /** Each slot's id and the queue names it serves. */
  slots: { id: string; lanes: string[] }[];
  batch: number;
  sequences: number;
  tokensPerSecond: number;
}

type Request = SimBullStart | { type: "events" } | { type: "go" } | { type: "stop" };

const workers: Worker[] = [];
const connections: Redis[] = [];
let events: SimJobEvent[] = [];
let stopping = false;
let go: (() => void) | null = null;

const send = (message: SimSlotsReply) => process.send?.(message);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function start(message: SimBullStart): Promise<void> {
  const tokenMs = 1000 / message.tokensPerSecond;
  for (let at = 0; at < message.slots.length && !stopping; at += message.batch) {
    const batch = message.slots.slice(at, at + message.batch);
    await Promise.all(
      batch.map(async (slot) => {
        const connection = new Redis(message.redisUrl, { maxRetriesPerRequest: null, connectionName: slot.id });
        connections.push(connection);
        for (const lane of slot.lanes) {
          const worker = new Worker<{ max_tokens: number }>(
            lane,
            async (job) => {
              const startedAt = Date.now();
              await sleep(tokenMs * job.data.max_tokens);
              events.push({
                id: job.id!,
                slot: slot.id,
                createdAt: job.timestamp,
                startedAt,
                endedAt: Date.now(),
                ok: true,
              });
              return { completion_tokens: job.data.max_tokens };
            },
            { connection, prefix: message.prefix, concurrency: message.sequences },
          );
          worker.on("error", (error) => console.error(`bullmq worker ${slot.id} ${lane}:`, error.message));
          workers.push(worker);
          await worker.waitUntilReady();
        }
      }),
    );
    await new Promise<void>((resolve) => {
      go = resolve;
      send({ type: "started", count: Math.min(at + message.batch, message.slots.length) });
    });
  }
  send({ type: "ready" });
}

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  go?.();
  await Promise.allSettled(workers.map((worker) => worker.close(true)));
  for (const connection of connections) connection.disconnect();
  process.exit(0);
}

process.on("message", (message: Request) => {
  if (message.type === "start")
    start(message).catch((error: unknown) =>
      send({ type: "failed", message: error instanceof Error ? error.message : String(error) }),
    );
  else if (message.type === "go") {
    const resume = go;
    go = null;
    resume?.();
  } else if (message.type === "events") {
    send({ type: "events", events });
    events = [];
  } else if (message.type === "stop") void stop();
});
process.on("disconnect", () => void stop());
process.on("SIGTERM", () => void stop());
