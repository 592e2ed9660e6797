import { fork, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stopChild } from "./corral-stack.js";
import type { SimJobEvent } from "./sim-engine.js";
import type { SimBullStart } from "./entries/sim-bull-entry.js";
import type { SimSlotsReply, SimSlotsStart } from "./entries/sim-slots-entry.js";

/** Why a fleet stopped starting: what the caller's `onBatch` check said. */
export class FleetStartAborted extends Error {
  override name = "FleetStartAborted";
}

export interface SimFleetOptions {
  kind: "corral" | "bullmq";
  /** One start message per process (each with its share of the slots). */
  starts: (Omit<SimSlotsStart, "type"> | Omit<SimBullStart, "type">)[];
  label: string;
  logDir: string;
  /**
   * Called after each batch of slots started in any process, with the slots up so far;
   * a returned string stops the start (the fleet closes and `start` rejects with it).
   */
  onBatch?: (slotsUp: number) => Promise<string | null>;
  /** @defaultValue 600000 */
  timeoutMs?: number;
}

const ENTRIES = {
  corral: fileURLToPath(new URL("./entries/sim-slots-entry.ts", import.meta.url)),
  bullmq: fileURLToPath(new URL("./entries/sim-bull-entry.ts", import.meta.url)),
};

/**
 * The simulated slots of the cluster simulator: a few child processes, each running many
 * slots in one event loop (sim-slots-entry.ts for Corral, sim-bull-entry.ts for the raw
 * BullMQ baseline). Starts them a batch at a time, collects their job events, stops them.
 */
export class SimFleet {
  readonly #children: ChildProcess[];
  #closed: Promise<void> | null = null;

  private constructor(children: ChildProcess[]) {
    this.#children = children;
  }

  /** The processes' pids (CPU accounting). */
  get pids(): number[] {
    return this.#children.flatMap((child) => (child.pid === undefined ? [] : [child.pid]));
  }

  static async start(o: SimFleetOptions): Promise<SimFleet> {
    const children = o.starts.map((_, i) => {
      const log = openSync(join(o.logDir, `${o.label}-${o.kind}-${i}.log`), "a");
      const child = fork(ENTRIES[o.kind], [], {
        execArgv: ["--import", "tsx"],
        env: { PATH: process.env.PATH, HOME: process.env.HOME },
        stdio: ["ignore", log, log, "ipc"],
      });
      closeSync(log);
      // A send to a process that died fails here; its exit is what start() reports.
      child.on("error", (error) => process.stderr.write(`simulated slot process ${i}: ${error.message}\n`));
      return child;
    });
    const fleet = new SimFleet(children);
    try {
      const counts = children.map(() => 0);
      let checking: Promise<void> = Promise.resolve();
      // One process at a time, so that each check sees only the slots it counts.
      const startOne = (child: ChildProcess, i: number) =>
        new Promise<void>((resolve, reject) => {
          if (child.exitCode !== null)
            return reject(new Error(`simulated slot process ${i} exited with ${child.exitCode}`));
          child.once("exit", (code) => reject(new Error(`simulated slot process ${i} exited with ${code}`)));
          child.on("message", (message: SimSlotsReply) => {
            if (message.type === "ready") resolve();
            else if (message.type === "failed") reject(new Error(`simulated slot process ${i}: ${message.message}`));
            else if (message.type === "started") {
              counts[i] = message.count;
              // One check at a time; the process waits for its "go".
              checking = checking.then(async () => {
                try {
                  const verdict = o.onBatch ? await o.onBatch(counts.reduce((a, b) => a + b, 0)) : null;
                  if (verdict !== null) reject(new FleetStartAborted(verdict));
                  else if (child.connected) child.send({ type: "go" });
                } catch (error) {
                  reject(error instanceof Error ? error : new Error(String(error)));
                }
              });
            }
          });
          child.send({ type: "start", ...o.starts[i]! });
        });
      await withTimeout(
        (async () => {
          for (const [i, child] of children.entries()) await startOne(child, i);
        })(),
        o.timeoutMs ?? 600_000,
        `the simulated ${o.kind} slots did not start in time`,
      );
      return fleet;
    } catch (error) {
      await fleet.close();
      throw error;
    }
  }

  /** The job events every process recorded since the last call. */
  async events(): Promise<SimJobEvent[]> {
    const replies = await Promise.all(
      this.#children.map(
        (child) =>
          new Promise<SimJobEvent[]>((resolve, reject) => {
            if (!child.connected) return reject(new Error("a simulated slot process is gone"));
            const onMessage = (message: SimSlotsReply) => {
              if (message.type !== "events") return;
              child.off("message", onMessage);
              resolve(message.events);
            };
            child.on("message", onMessage);
            child.send({ type: "events" });
          }),
      ),
    );
    return replies.flat();
  }

  /** Stops every process (their slots close, releasing active jobs). Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await Promise.all(
        this.#children.map(async (child) => {
          if (child.connected) child.send({ type: "stop" });
          await stopChild(child, "SIGTERM", 20_000);
        }),
      );
    })();
    return this.#closed;
  }
}

/** Splits `items` into `parts` nearly equal consecutive shares (none empty). */
export function shares<T>(items: readonly T[], parts: number): T[][] {
  const count = Math.max(1, Math.min(parts, items.length));
  return Array.from({ length: count }, (_, i) =>
    items.slice(Math.floor((i * items.length) / count), Math.floor(((i + 1) * items.length) / count)),
  );
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
