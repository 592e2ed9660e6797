import { Command } from "commander";
import type { CliContext } from "../context.js";
import { CliError } from "../errors.js";
import { addEnvOptions } from "../options/env-options.js";
import { envWithFlags, loadOrExplain } from "../options/with-flags.js";

export const NO_GPU_MESSAGE = "no NVIDIA GPU found (nvidia-smi missing): workers run in CPU mode";
const GPU_VARIABLES = new Set(["CORRAL_NVIDIA_SMI", "CORRAL_NVIDIA_SMI_TIMEOUT_MS"]);

/** `corral gpus`: GPU discovery on this machine, as a worker would see it. Needs no Redis. */
export function gpusCommand(ctx: CliContext): Command {
  const command = new Command("gpus")
    .description("list this machine's NVIDIA GPUs as a worker sees them (nvidia-smi; no Redis needed)")
    .option("--json", "print the discovery as JSON");
  const map = addEnvOptions(
    command,
    ctx.workerEnv.filter((spec) => GPU_VARIABLES.has(spec.name)),
  );
  command.action(async (opts: { json?: boolean }) => {
    const { loadConfig, discoverGpus, formatGpuTable } = await import("@corral/worker");
    const config = loadOrExplain(loadConfig, envWithFlags(ctx.env, command, map));
    let discovery;
    try {
      discovery = await discoverGpus({ nvidiaSmiPath: config.nvidiaSmiPath, timeoutMs: config.nvidiaSmiTimeoutMs });
    } catch (error) {
      throw new CliError(`GPU discovery failed: ${(error as Error).message}`, {
        hint: "check that the NVIDIA driver works (`nvidia-smi` on its own), or set --nvidia-smi / CORRAL_NVIDIA_SMI",
        cause: error,
      });
    }
    if (opts.json) ctx.io.out(JSON.stringify(discovery, null, 2));
    else if (discovery.mode === "cpu" || discovery.gpus.length === 0) ctx.io.out(NO_GPU_MESSAGE);
    else ctx.io.out(formatGpuTable(discovery));
  });
  return command;
}
