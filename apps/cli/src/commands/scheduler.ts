import { Command } from "commander";
import type { CliContext } from "../context.js";
import { listenForShutdown } from "../local/shutdown.js";
import { addEnvOptions } from "../options/env-options.js";
import { explainStartError } from "../errors.js";
import { envWithFlags, loadOrExplain } from "../options/with-flags.js";
import { createLogger } from "../output/logger.js";

/** `corral scheduler`: the HTTP API in the foreground until SIGINT/SIGTERM. */
export function schedulerCommand(ctx: CliContext): Command {
  const command = new Command("scheduler").description(
    "run the scheduler (HTTP API, queues) in the foreground; every CORRAL_* variable it reads has a flag",
  );
  const map = addEnvOptions(command, ctx.schedulerEnv);
  command.action(async () => {
    const { loadConfig, startScheduler } = await import("@corral/scheduler");
    const config = loadOrExplain(loadConfig, envWithFlags(ctx.env, command, map));
    const shutdown = listenForShutdown(ctx.io);
    try {
      const scheduler = await explainStartError(
        () => startScheduler(config, { logger: createLogger(config.logLevel, 1) }),
        "--port",
      );
      ctx.io.err(`scheduler listening on ${scheduler.url}`);
      await shutdown.received;
      await scheduler.close();
    } finally {
      shutdown.dispose();
    }
  });
  return command;
}
