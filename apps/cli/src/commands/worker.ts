import os from "node:os";
import { Command } from "commander";
import type { CliContext } from "../context.js";
import { listenForShutdown } from "../local/shutdown.js";
import { addEnvOptions } from "../options/env-options.js";
import { CliError, explainStartError } from "../errors.js";
import { envWithFlags, loadOrExplain } from "../options/with-flags.js";
import { createLogger } from "../output/logger.js";

/** `corral worker`: the worker supervisor (one slot per GPU, or CPU slots) until SIGINT/SIGTERM; `--plan` only prints. */
export function workerCommand(ctx: CliContext): Command {
  const command = new Command("worker")
    .description(
      "run a worker: one slot per GPU or MIG device (--gpus 0,2 picks GPUs) or CPU slots (--cpu); drains on SIGTERM",
    )
    .option(
      "--plan",
      "start nothing: print the slots this worker would start and where each model of the models folder could run",
    )
    .option("--json", "with --plan: print the plan as JSON");
  const map = addEnvOptions(command, ctx.workerEnv);
  command.action(async (opts: { plan?: boolean; json?: boolean }) => {
    const { loadConfig, startWorker } = await import("@corral/worker");
    const env = envWithFlags(ctx.env, command, map);
    const config = loadOrExplain(loadConfig, env);
    if (opts.plan) {
      await printPlan(ctx, config, env, opts.json === true);
      return;
    }
    if (opts.json) throw new CliError("--json needs --plan", { hint: "corral worker --plan --json" });
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

/**
 * `corral worker --plan`: GPU discovery and `nvidia-smi topo -m` (or the CPU), the catalog
 * built from the models folder the way the scheduler builds it (CORRAL_MODELS_DIR, with the
 * scheduler's CORRAL_CONTEXT_SIZE and CORRAL_SEQUENCES), then the placement policy. Needs
 * no Redis and no scheduler.
 */
async function printPlan(
  ctx: CliContext,
  config: import("@corral/worker").WorkerConfig,
  env: Record<string, string | undefined>,
  json: boolean,
): Promise<void> {
  const { buildWorkerPlan, discoverGpus, discoverTopology, formatWorkerPlan } = await import("@corral/worker");
  const scheduler = await import("@corral/scheduler");
  const schedulerConfig = loadOrExplain(scheduler.loadConfig, env);
  const nvidiaSmi = { nvidiaSmiPath: config.nvidiaSmiPath, timeoutMs: config.nvidiaSmiTimeoutMs };
  let discovery: Awaited<ReturnType<typeof discoverGpus>>;
  try {
    discovery = config.cpu
      ? { mode: "cpu", gpus: [], driverVersion: null, cudaVersion: null }
      : await discoverGpus(nvidiaSmi);
  } catch (error) {
    throw new CliError(`GPU discovery failed: ${(error as Error).message}`, {
      hint: "check that the NVIDIA driver works (`nvidia-smi` on its own), or set --nvidia-smi / CORRAL_NVIDIA_SMI",
      cause: error,
    });
  }
  const topology = discovery.mode === "gpu" && discovery.gpus.length > 1 ? await discoverTopology(nvidiaSmi) : null;
  const models = await scheduler.scanModels({
    modelsDir: config.modelsDir,
    defaultContextSize: schedulerConfig.contextSize,
    defaultSequences: schedulerConfig.sequences,
    logger: createLogger("warn", 2),
  });
  const plan = buildWorkerPlan({
    config,
    discovery,
    topology,
    models,
    cores: os.availableParallelism(),
    ram: { totalBytes: os.totalmem(), freeBytes: os.freemem() },
  });
  ctx.io.out(json ? JSON.stringify(plan, null, 2) : formatWorkerPlan(plan));
}
