import type { Command } from "commander";
import type { Env } from "@corral/shared";
import { configErrorToCliError, isConfigError } from "../errors.js";
import { flagsAsVariables, type EnvOptionMap } from "./env-options.js";

/** `{...env, ...flags as variables}`: flags override the environment. */
export function envWithFlags(env: Env, command: Command, map: EnvOptionMap): Record<string, string | undefined> {
  return { ...env, ...flagsAsVariables(command.opts(), map) };
}

/** Runs an app's `loadConfig`, turning a ConfigError into the CLI's `error:` line and exit code 2. */
export function loadOrExplain<T>(load: (env: Env) => T, env: Env): T {
  try {
    return load(env);
  } catch (error) {
    if (isConfigError(error)) throw configErrorToCliError(error);
    throw error;
  }
}
