import { Command } from "commander";
import type { CliContext } from "../context.js";
import { listenForShutdown } from "../local/shutdown.js";
import { addEnvOptions } from "../options/env-options.js";
import { explainStartError } from "../errors.js";
import { envWithFlags, loadOrExplain } from "../options/with-flags.js";
import { createLogger } from "../output/logger.js";

/** `corral worker`: the worker supervisor (one slot per GPU, or CPU slots) until SIGINT/SIGTERM. */
export function workerCommand(ctx: CliContext): Command {
  const command = new Command("worker").description(
    "run a worker: one slot per GPU (--gpus 0,2 picks them) or CPU slots (--cpu); drains on SIGTERM",
  );
  const map = addEnvOptions(command, ctx.workerEnv);
  command.action(async () => {
    const { loadConfig, startWorker } = await import("@corral/worker");
    const env = envWithFlags(ctx.env, command, map);
    const config = loadOrExplain(loadConfig, env);
    const shutdown = listenForShutdown(ctx.io);
    try {
      const worker = await explainStartError(
        () => startWorker(config, { logger: createLogger(config.logLevel, 1), env }),
        "--worker-metrics-port",
      );
      ctx.io.err(`worker ${config.workerId} running; metrics on ${worker.metricsUrl}`);
      await shutdown.received;
      await worker.close();
    } finally {
      shutdown.dispose();
    }
  });
  return command;
}
