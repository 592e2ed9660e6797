import type { Command } from "commander";
import { SchedulerClient } from "../client/scheduler-client.js";
import type { CliContext } from "../context.js";
import { CLIENT_ENV, loadConfig } from "../env.js";
import { addEnvOptions } from "../options/env-options.js";
import { envWithFlags, loadOrExplain } from "../options/with-flags.js";

/** Adds `--url` and `--api-key` (CORRAL_URL, CORRAL_API_KEY) and returns a factory for the client. */
export function withClientOptions(command: Command, ctx: CliContext): () => SchedulerClient {
  const map = addEnvOptions(command, CLIENT_ENV);
  return () => {
    const config = loadOrExplain(loadConfig, envWithFlags(ctx.env, command, map));
    return new SchedulerClient({ url: config.url, apiKey: config.apiKey });
  };
}
