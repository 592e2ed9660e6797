import { pino } from "pino";
import { ConfigError, type Env } from "@corral/shared";
import { loadConfig, type SchedulerConfig } from "./env.js";
import { startScheduler, type RunningScheduler } from "./server.js";

/**
 * Runs the scheduler as a process: reads the configuration from `env`, starts, and on
 * SIGTERM or SIGINT closes and exits 0; SIGHUP scans the models folder again. A bad
 * configuration prints the ConfigError's message and exits 2.
 */
export async function main(env: Env = process.env): Promise<RunningScheduler> {
  let config: SchedulerConfig;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`corral scheduler: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = pino({ name: "corral-scheduler", level: config.logLevel });
  const scheduler = await startScheduler(config, { logger });
  const stop = (signal: NodeJS.Signals) => {
    logger.info({ signal }, "signal received");
    scheduler.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  process.on("SIGHUP", () => {
    logger.info({ signal: "SIGHUP" }, "scanning the models folder again");
    void scheduler.rescanModels();
  });
  return scheduler;
}
