import { Command } from "commander";
import { redactUrl, type WorkerState } from "@corral/shared";
import { SchedulerClient } from "../client/scheduler-client.js";
import type { CliContext } from "../context.js";
import { ensureDemoModel, listGgufFiles } from "../demo/ensure-demo-model.js";
import { runDemo } from "../demo/run-demo.js";
import { CliError, ExitCode, explainStartError } from "../errors.js";
import { pingRedis, startLocalRedis, type LocalRedis } from "../local/redis.js";
import { listenForShutdown, sleep } from "../local/shutdown.js";
import { addEnvOptions, mergeSpecs } from "../options/env-options.js";
import { envWithFlags, loadOrExplain } from "../options/with-flags.js";
import { createLogger } from "../output/logger.js";
import { formatWorkersTable } from "./workers.js";

/** How long `up` waits for the first worker heartbeat. */
const HEARTBEAT_WAIT_MS = 120_000;

interface Closable {
  close(): Promise<void>;
}

/**
 * `corral up`: everything on one machine. Uses the Redis at CORRAL_REDIS_URL when it answers,
 * else starts a throwaway redis-server; then a scheduler and a worker in this process.
 */
export function upCommand(ctx: CliContext): Command {
  const command = new Command("up")
    .description(
      "run Redis (if none answers), a scheduler and a worker on this machine; --demo runs a sample batch and exits",
    )
    .option("--demo", "download a tiny model if the models folder has none, run a sample batch, print tokens/s, exit");
  const map = addEnvOptions(command, mergeSpecs(ctx.schedulerEnv, ctx.workerEnv));
  command.addHelpText(
    "after",
    "\nLogs (JSON) go to stderr at level warn unless --log-level / CORRAL_LOG_LEVEL says otherwise.",
  );
  command.action(async (opts: { demo?: boolean }) => {
    const [{ loadConfig: loadSchedulerConfig, startScheduler }, { loadConfig: loadWorkerConfig, startWorker }] =
      await Promise.all([import("@corral/scheduler"), import("@corral/worker")]);
    const env = envWithFlags(ctx.env, command, map);
    env.CORRAL_LOG_LEVEL ??= "warn";
    let schedulerConfig = loadOrExplain(loadSchedulerConfig, env);
    let workerConfig = loadOrExplain(loadWorkerConfig, env);
    const { io } = ctx;
    const shutdown = listenForShutdown(io);
    const logger = createLogger(schedulerConfig.logLevel, 2);
    // Closed in this order: worker (drain), scheduler, redis-server.
    const owned: { worker?: Closable; scheduler?: Closable; redis?: Closable } = {};
    let exitCode = 0;
    try {
      // 1. Models (first: a failed download should not start anything).
      if (opts.demo) {
        await ensureDemoModel({
          modelsDir: schedulerConfig.modelsDir,
          logger: { info: (line) => io.err(line) },
          showProgress: io.isTty,
        });
      } else if ((await listGgufFiles(schedulerConfig.modelsDir)).length === 0) {
        io.err(
          `warning: no .gguf model in ${schedulerConfig.modelsDir}; copy models there, set --models-dir / CORRAL_MODELS_DIR, ` +
            "or run `corral up --demo` once to download a tiny one",
        );
      }
      if (shutdown.signal.aborted) return;

      // 2. Redis.
      let redis: LocalRedis | undefined;
      if (await pingRedis(schedulerConfig.redisUrl, 1000, schedulerConfig.redisTls)) {
        io.err(`redis: using ${redactUrl(schedulerConfig.redisUrl)}`);
      } else {
        redis = await startLocalRedis({ path: ctx.env.PATH });
        owned.redis = { close: () => redis!.stop() };
        io.err(
          `redis: nothing answers at ${redactUrl(schedulerConfig.redisUrl)}; started redis-server on ${redis.url} (pid ${redis.pid}, no persistence)`,
        );
        schedulerConfig = { ...schedulerConfig, redisUrl: redis.url };
        workerConfig = { ...workerConfig, redisUrl: redis.url };
      }
      if (shutdown.signal.aborted) return;

      // 3. Scheduler, then a worker.
      const scheduler = await explainStartError(() => startScheduler(schedulerConfig, { logger }), "--port");
      owned.scheduler = scheduler;
      const key = schedulerConfig.apiKeys[0];
      io.out(`Corral is up: ${scheduler.url}`);
      io.out(`Web console: ${scheduler.url}/console/`);
      if (key) io.out(`API key (tenant ${key.tenant}): ${key.key}`);
      if (shutdown.signal.aborted) return;
      const worker = await explainStartError(
        () => startWorker(workerConfig, { logger, env: { ...env, CORRAL_REDIS_URL: workerConfig.redisUrl } }),
        "--worker-metrics-port",
      );
      owned.worker = worker;

      // 4. Wait for the first heartbeat.
      const client = new SchedulerClient({
        url: scheduler.url,
        apiKey: key?.key ?? schedulerConfig.adminKey ?? undefined,
      });
      const workers = await waitForWorkers(client, shutdown.signal);
      if (shutdown.signal.aborted) return;
      if (workers.length === 0) {
        throw new CliError(`no worker heartbeat within ${HEARTBEAT_WAIT_MS / 1000} s`, {
          hint: "run with --log-level info to see the worker's logs",
        });
      }
      io.out(formatWorkersTable(workers, Date.now()));

      // 5. Demo, or run until a signal.
      if (opts.demo) {
        try {
          const summary = await runDemo({ client, io, signal: shutdown.signal });
          if (summary.failed > 0) exitCode = 1;
        } catch (error) {
          if (!shutdown.signal.aborted) throw error;
          io.err("demo interrupted; jobs still queued are dropped with this Redis (or stay queued in yours)");
        }
      } else {
        io.out("press Ctrl-C to stop");
        await shutdown.received;
      }
    } finally {
      const failures = await closeAll(
        [
          ["worker", owned.worker],
          ["scheduler", owned.scheduler],
          ["redis-server", owned.redis],
        ],
        (line) => io.err(line),
      );
      shutdown.dispose();
      if (failures > 0) exitCode = 1;
      logger.flush();
    }
    if (exitCode !== 0) throw new ExitCode(exitCode);
  });
  return command;
}

/** Polls GET /v1/workers until one worker shows up, the signal aborts, or the wait runs out. */
async function waitForWorkers(client: SchedulerClient, signal: AbortSignal): Promise<WorkerState[]> {
  const deadline = Date.now() + HEARTBEAT_WAIT_MS;
  while (!signal.aborted && Date.now() < deadline) {
    const workers = await client.listWorkers();
    if (workers.length > 0) return workers;
    await sleep(250, signal);
  }
  return [];
}

/** Closes in order (worker, scheduler, redis-server), each step on its own. Returns the failures. */
async function closeAll(
  steps: readonly (readonly [string, Closable | undefined])[],
  log: (line: string) => void,
): Promise<number> {
  let failures = 0;
  for (const [name, resource] of steps) {
    if (!resource) continue;
    try {
      await resource.close();
      log(`stopped ${name}`);
    } catch (error) {
      failures++;
      log(`error: stopping ${name} failed: ${(error as Error).message}`);
    }
  }
  return failures;
}
