/**
 * Entry of a slot process, forked by the supervisor. It waits for the "start" message
 * (config and slot spec) on the IPC channel, runs one {@link Slot}, answers metrics
 * requests with its registry's JSON, and drains on SIGTERM / SIGINT or when the
 * supervisor goes away, then exits 0. For dynamic groups it also retires, telling the
 * supervisor first ("retiring"): when asked to ("retire"), at its next idle moment; and, a
 * group slot formed on demand, once it has run no job for keep-alive ({@link RetireWatch}).
 */
import { pino } from "pino";
import type { SlotMessage, SupervisorMessage } from "./types.js";
import { RetireWatch } from "./retire-watch.js";
import { Slot } from "./slot.js";
import { sendToSupervisor } from "./supervisor-channel.js";

function send(message: SlotMessage): void {
  sendToSupervisor(message);
}

/** How often a watched slot checks whether it retires. */
const RETIRE_CHECK_MS = 250;

async function runSlot(message: Extract<SupervisorMessage, { type: "start" }>): Promise<void> {
  const { config, slot: spec, lockTokenPrefix } = message;
  const logger = pino({ level: config.logLevel, base: { worker: config.workerId, slot: spec.id, pid: process.pid } });
  let slot: Slot | null = null;
  let stopping = false;
  const starting = Slot.start({ config, slot: spec, logger, lockTokenPrefix });

  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ why }, "slot shutting down");
    const closed = starting.then(
      (started) => started.close(),
      () => undefined,
    );
    closed.then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "slot shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("disconnect", () => stop("supervisor gone"));

  const watch = new RetireWatch({
    startedAt: Date.now(),
    retireWhenIdleMs: spec.dynamicGroup?.retireWhenIdleMs ?? null,
  });
  let watching: NodeJS.Timeout | null = null;
  const watchRetire = () => {
    watching ??= setInterval(() => {
      const why = slot === null || stopping ? null : watch.check(slot.activeJobs.length, Date.now());
      if (why === null) return;
      clearInterval(watching!);
      send({ type: "retiring", why });
      stop(`retiring: ${why}`);
    }, RETIRE_CHECK_MS);
  };

  process.on("message", (raw: SupervisorMessage) => {
    if (raw.type === "retire") {
      watch.retire();
      watchRetire();
      return;
    }
    if (raw.type !== "metrics-request") return;
    const registry = slot?.metrics.registry;
    if (!registry) {
      send({ type: "metrics", requestId: raw.requestId, metrics: [] });
      return;
    }
    registry.getMetricsAsJSON().then(
      (metrics) => send({ type: "metrics", requestId: raw.requestId, metrics }),
      (error: unknown) => {
        logger.warn({ err: error }, "collecting metrics failed");
        send({ type: "metrics", requestId: raw.requestId, metrics: [] });
      },
    );
  });

  try {
    slot = await starting;
  } catch (error) {
    logger.error({ err: error }, "slot failed to start");
    send({ type: "fatal", message: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  }
  if (!stopping) send({ type: "ready", slot: spec.id });
  if (watch.watching) watchRetire();
}

process.once("message", (message: SupervisorMessage) => {
  if (message.type !== "start") return;
  runSlot(message).catch((error: unknown) => {
    console.error("slot crashed:", error);
    process.exit(1);
  });
});

if (!process.send) {
  console.error("slot-main runs as a child of the Corral worker supervisor (corral worker); it cannot run alone.");
  process.exit(2);
}
