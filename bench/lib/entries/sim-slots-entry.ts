/**
 * One process of the cluster simulator: many Corral slots (the real `Slot`: claim loop,
 * lane workers, heartbeats, cancel subscriber) in one event loop, each with the engine
 * stand-in of ../sim-engine.ts and a memory probe with room for one model. Driven over
 * IPC by bench/lib/sim-fleet.ts:
 * - "start" (config, slot ids, a batch size): starts the slots a batch at a time; after
 *   each batch it tells the parent ("started") and waits for its "go"; then "ready";
 * - "events": sends the job events recorded since the last ask ("events");
 * - "stop": closes every slot (their active jobs are released), then exits.
 */
import { pino } from "pino";
import { loadConfig, Slot, type SlotSpec } from "@corral/worker";
import { SimEngine, SimMemoryProbe, type SimJobEvent } from "../sim-engine.js";

export interface SimSlotsStart {
  type: "start";
  /** The worker's environment (CORRAL_REDIS_URL, CORRAL_PREFIX, …), as `corral worker` would read it. */
  env: Record<string, string>;
  slots: string[];
  batch: number;
  tokensPerSecond: number;
  loadMs: number;
  /** The requirement of one catalog model on a CPU slot, bytes. */
  modelBytes: number;
}

/** "go": the parent has looked at Redis after a batch; start the next one. */
export type SimSlotsRequest = SimSlotsStart | { type: "go" } | { type: "events" } | { type: "stop" };

export type SimSlotsReply =
  | { type: "started"; count: number }
  | { type: "ready" }
  | { type: "events"; events: SimJobEvent[] }
  | { type: "failed"; message: string };

const logger = pino({ level: process.env.BENCH_LOG_LEVEL ?? "warn", base: { pid: process.pid } });
const slots: Slot[] = [];
let events: SimJobEvent[] = [];
let stopping = false;
let go: (() => void) | null = null;

const send = (message: SimSlotsReply) => process.send?.(message);

async function start(message: SimSlotsStart): Promise<void> {
  const config = loadConfig(message.env);
  for (let at = 0; at < message.slots.length && !stopping; at += message.batch) {
    const batch = message.slots.slice(at, at + message.batch);
    const started = await Promise.all(
      batch.map((id) => {
        const engine = new SimEngine({
          slot: id,
          tokensPerSecond: message.tokensPerSecond,
          loadMs: message.loadMs,
          onEvent: (event) => events.push(event),
        });
        const spec: SlotSpec = {
          id: `${config.workerId}:${id}`,
          name: id,
          kind: "cpu",
          gpuIndex: null,
          gpus: [],
          cudaVersion: null,
          devices: [],
          threads: 1,
          calibrateThreads: false,
        };
        return Slot.start({
          config,
          slot: spec,
          logger,
          engine,
          probe: new SimMemoryProbe({ engine, modelBytes: message.modelBytes, fits: 1 }),
          lockTokenPrefix: `${spec.id}:${process.pid}:`,
        });
      }),
    );
    slots.push(...started);
    await new Promise<void>((resolve) => {
      go = resolve;
      send({ type: "started", count: slots.length });
    });
  }
  send({ type: "ready" });
}

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  go?.();
  await Promise.allSettled(slots.map((slot) => slot.close(0)));
  process.exit(0);
}

process.on("message", (message: SimSlotsRequest) => {
  if (message.type === "start")
    start(message).catch((error: unknown) => {
      send({ type: "failed", message: error instanceof Error ? error.message : String(error) });
    });
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
