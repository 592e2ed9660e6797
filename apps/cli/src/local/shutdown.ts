import type { CliIo } from "../output/io.js";

export interface ShutdownSignal {
  /** Aborted on the first SIGINT or SIGTERM. */
  readonly signal: AbortSignal;
  /** Resolves with the first signal received. */
  readonly received: Promise<NodeJS.Signals>;
  /** Removes the handlers. Idempotent. */
  dispose(): void;
}

/**
 * Listens for SIGINT and SIGTERM. The first one starts a graceful shutdown; a second one
 * exits at once with 130, for when draining takes longer than the user wants to wait.
 */
export function listenForShutdown(io: CliIo): ShutdownSignal {
  const controller = new AbortController();
  let resolveReceived!: (signal: NodeJS.Signals) => void;
  const received = new Promise<NodeJS.Signals>((resolve) => (resolveReceived = resolve));
  const handler = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      io.err(`${signal} again: exiting without waiting`);
      process.exit(130);
    }
    io.err(`${signal}: shutting down (press Ctrl-C again to force)`);
    controller.abort(new Error(`received ${signal}`));
    resolveReceived(signal);
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  let disposed = false;
  return {
    signal: controller.signal,
    received,
    dispose() {
      if (disposed) return;
      disposed = true;
      process.removeListener("SIGINT", handler);
      process.removeListener("SIGTERM", handler);
    },
  };
}

/** Resolves after `ms`, or early (without throwing) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
