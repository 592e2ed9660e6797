import { pino } from "pino";
import { ConfigError, type Env } from "@corral/shared";
import { loadConfig, type WorkerConfig } from "./env.js";
import { startWorker } from "./supervisor/start-worker.js";

/**
 * `corral worker`: reads the configuration, starts the supervisor and its slots, and on
 * SIGTERM / SIGINT drains them and exits 0. A bad variable prints what is wrong and
 * exits 2; a failed start exits 1.
 */
export async function main(env: Env = process.env): Promise<void> {
  let config: WorkerConfig;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`corral worker: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const logger = pino({ level: config.logLevel, base: { worker: config.workerId } });
  let worker;
  try {
    worker = await startWorker(config, { logger, env });
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`corral worker: ${error.message}`);
      process.exit(2);
    }
    logger.fatal({ err: error }, "the worker could not start");
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    worker.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}
