import type { Env } from "@corral/shared";
import type { EnvVariableSpec } from "./options/env-options.js";
import type { CliIo } from "./output/io.js";

/** What every command gets from `main`: the environment, where to write, and the apps' variable lists. */
export interface CliContext {
  readonly env: Env;
  readonly io: CliIo;
  /** `SCHEDULER_ENV`, loaded only for the commands that need it. */
  readonly schedulerEnv: readonly EnvVariableSpec[];
  /** `WORKER_ENV`, loaded only for the commands that need it. */
  readonly workerEnv: readonly EnvVariableSpec[];
}
