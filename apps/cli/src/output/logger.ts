import { pino, type Logger, type Level } from "pino";

/** A pino logger for an app run from the CLI: JSON lines on `fd` (1 for services, 2 under `corral up`). */
export function createLogger(level: Level | "silent", fd: 1 | 2 = 1): Logger {
  return pino({ name: "corral", level }, pino.destination({ dest: fd, sync: true }));
}
