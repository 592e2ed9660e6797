import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Redis } from "ioredis";
import { pino, type Logger } from "pino";
import { Registry } from "prom-client";
import { ConfigError, RedisKeys, connectRedis, guardRedis, redactUrl } from "@corral/shared";
import { StreamHub } from "./api/openai/stream-hub.js";
import { TenantStreams } from "./api/connections/tenant-streams.js";
import { createApp, type AppDeps } from "./app.js";
import { ApiKeyAuthenticator } from "./auth/api-key-authenticator.js";
import { createBatchSystem } from "./batches/batch-system.js";
import { ReplicaWait } from "./jobs/replica-wait.js";
import { ModelCatalog } from "./catalog/index.js";
import type { ModelCatalogView } from "./catalog/types.js";
import type { SchedulerConfig } from "./env.js";
import { JobService } from "./jobs/job-service.js";
import { InteractiveLeases } from "./jobs/interactive-leases.js";
import { TenantQuotas } from "./jobs/tenant-quotas.js";
import { AudioBudget } from "./jobs/audio-budget.js";
import { TokenBudget } from "./jobs/token-budget.js";
import { LaneQueues } from "./jobs/lane-queues.js";
import { RemovedModelJobs } from "./jobs/removed-model-jobs.js";
import { SchedulerMetrics } from "./metrics/scheduler-metrics.js";
import { PromptLengthGuard } from "./prompt-length/prompt-length-guard.js";
import { WorkerRegistry } from "./workers/worker-registry.js";

export interface StartSchedulerOptions {
  /** @defaultValue a pino logger at `config.logLevel` */
  logger?: Logger;
  /**
   * The model catalog. When absent, a ModelCatalog scans `config.modelsDir` and publishes
   * to Redis.
   */
  catalog?: ModelCatalogView;
  /**
   * How long `close()` lets in-flight requests finish before cutting connections.
   * @defaultValue 10000
   */
  shutdownGraceMs?: number;
  /** See {@link AppDeps.extraRoutes}. */
  extraRoutes?: AppDeps["extraRoutes"];
}

/** A started scheduler. */
export interface RunningScheduler {
  /** Base URL with the real bound port, e.g. `http://127.0.0.1:8080`. */
  url: string;
  port: number;
  /**
   * Scans the models folder again now and publishes the catalog (what SIGHUP does). A
   * no-op when the catalog was passed in. Never rejects: a failed rescan (a bad
   * models.yaml) is logged and the previous catalog stays.
   */
  rescanModels(): Promise<void>;
  /** Stops accepting, lets in-flight requests finish (long polls answer at once), closes queues and Redis. Idempotent. */
  close(): Promise<void>;
}

/** Starts the scheduler: Redis, catalog, job service, metrics, and the HTTP server on `config.host:config.port`. */
export async function startScheduler(
  config: SchedulerConfig,
  options: StartSchedulerOptions = {},
): Promise<RunningScheduler> {
  const logger = options.logger ?? pino({ name: "corral-scheduler", level: config.logLevel });
  const log = logger.child({ component: "scheduler" });
  const keys = new RedisKeys(config.prefix);
  // The request path's connection: a command waits at most commandTimeout, and a queued one
  // fails after 3 reconnects, so a request during an outage is answered 503 in bounded time.
  // The blocking readers (token streams, job events) duplicate it without the timeout.
  const redis = connectRedis(config.redisUrl, config.redisTls, {
    maxRetriesPerRequest: 3,
    commandTimeout: config.redisCommandTimeoutMs,
    connectionName: "corral-scheduler",
  });
  redis.on("error", (error: Error) => log.warn({ err: error }, "redis connection error"));

  const cleanup: Array<[string, () => Promise<void> | void]> = [];
  const runCleanup = async () => {
    for (const [name, step] of cleanup.reverse()) {
      try {
        await step();
      } catch (error) {
        log.warn({ err: error, step: name }, "shutdown step failed");
      }
    }
  };
  cleanup.push(["redis", () => quitRedis(redis)]);

  try {
    // A Redis that cannot be read stops the start with the connection's own reason (refused,
    // a certificate not trusted, a wrong password) rather than "max retries".
    const findings = await guardRedis(redis, { allowEviction: config.redisAllowEviction });
    if (findings.unreachable) {
      throw new Error(`cannot use Redis at ${redactUrl(config.redisUrl)}: ${findings.unreachable.message}`, {
        cause: findings.unreachable.cause,
      });
    }
    for (const warning of findings.warnings) log.warn(warning);
    if (findings.refuse) throw new ConfigError("CORRAL_REDIS_URL", findings.refuse);
    const promptLength = config.checkPromptLength
      ? new PromptLengthGuard({ modelsDir: config.modelsDir, logger })
      : null;
    if (promptLength) cleanup.push(["prompt vocabularies", () => promptLength.close()]);
    // Set once the lanes exist (below): fails the waiting jobs of models that stay gone.
    let removedModels: RemovedModelJobs | null = null;
    const scanned = options.catalog
      ? null
      : await ModelCatalog.create({
          redis,
          keys,
          modelsDir: config.modelsDir,
          defaultContextSize: config.contextSize,
          defaultSequences: config.sequences,
          logger,
          // A model the catalog dropped (or whose file changed) gives back its vocabulary.
          onChange: (models) => void promptLength?.prune(models),
          onScanned: (models) => void removedModels?.check(models),
        });
    const catalog: ModelCatalogView = options.catalog ?? scanned!;
    if (scanned && config.catalogRescanMs > 0) {
      const stopRescans = scanned.rescanEvery(config.catalogRescanMs);
      cleanup.push(["catalog rescans", () => stopRescans()]);
    }
    if (scanned && config.catalogWatch) {
      const stopWatching = scanned.watch();
      cleanup.push(["catalog watch", () => stopWatching()]);
    }
    const registry = new Registry();
    const lanes = new LaneQueues({ connection: redis, keys, logger: logger.child({ component: "lanes" }) });
    cleanup.push(["lanes", () => lanes.close()]);
    if (scanned) {
      const removed = new RemovedModelJobs({
        redis,
        keys,
        lanes,
        logger,
        graceMs: config.modelRemovedGraceMs,
        rescan: () => scanned.rescan(),
      });
      removedModels = removed;
      cleanup.push(["removed models", () => removed.close()]);
      void removed.check(scanned.list());
    }
    const workers = new WorkerRegistry({ redis, keys, logger: logger.child({ component: "workers" }) });
    const streams = new StreamHub({
      redis,
      logger: logger.child({ component: "streams" }),
      connectionName: `corral-sse:${config.prefix}`,
    });
    cleanup.push(["token streams", () => streams.close()]);
    const tokenBudget = new TokenBudget({
      redis,
      keys,
      budgets: config.tokenBudgets,
      logger: logger.child({ component: "token-budget" }),
    });
    if (tokenBudget.enabled) await tokenBudget.refresh();
    const audioBudget = new AudioBudget({ redis, keys, budgets: config.audioBudgets });
    const metrics = new SchedulerMetrics({
      registry,
      lanes,
      workers,
      tokenBudget,
      audioBudget,
      redis,
      keys,
      logger: logger.child({ component: "metrics" }),
    });
    const replicaWait = new ReplicaWait({
      redis,
      slotKey: keys.catalog,
      replicas: config.redisWaitReplicas,
      timeoutMs: config.redisWaitTimeoutMs,
      logger: logger.child({ component: "replica-wait" }),
    });
    const jobs = new JobService({
      redis,
      replicaWait,
      keys,
      catalog,
      lanes,
      shares: config.tenantShares,
      fairCreditTokens: config.fairCreditTokens,
      tokenBudget,
      maxActive: config.tenantMaxActive,
      logger: logger.child({ component: "jobs" }),
      attempts: config.jobAttempts,
      maxQueuedPerTenant: config.maxQueuedPerTenant,
      ...(promptLength ? { promptLength } : {}),
      maxQueuedBytesPerTenant: config.maxQueuedBytesPerTenant,
      audioBudget,
      audioTtlMs: config.audioTtlMs,
      onSubmitted: (record, seconds) => metrics.jobSubmitted(record, seconds),
    });
    cleanup.push(["jobs", () => jobs.close()]);
    const batches = await createBatchSystem({
      redis,
      keys,
      jobs,
      registry,
      logger,
      dataDir: config.dataDir,
      maxFileBytes: config.maxFileBytes,
      maxFileLines: config.maxFileLines,
      maxTenantFileBytes: config.tenantFileBytes,
      outputFileTtlMs: config.outputFileTtlMs,
      fileSweepMs: config.fileSweepMs,
      fileOrphanAgeMs: config.fileOrphanAgeMs,
      chunkLines: config.batchChunkLines,
      maxActivePerTenant: config.maxActiveBatchesPerTenant,
      maxLineBytes: config.bodyLimitBytes,
      loopMs: config.batchLoopMs,
      leaseMs: config.batchLeaseMs,
      cancelGraceMs: config.batchCancelGraceMs,
      acknowledge: (what) => replicaWait.confirm(what),
    });
    cleanup.push(["batches", () => batches.close()]);
    const leases = new InteractiveLeases({
      redis,
      keys,
      leaseMs: config.interactiveLeaseMs,
      logger: logger.child({ component: "leases" }),
    });
    cleanup.push(["interactive leases", () => leases.close()]);
    const authenticator = new ApiKeyAuthenticator({ apiKeys: config.apiKeys, adminKey: config.adminKey });
    if (authenticator.open) {
      log.warn("CORRAL_API_KEYS is not set: the API is open and every caller is tenant `default`");
    }

    const app = createApp({
      jobs,
      catalog,
      workers,
      metrics,
      authenticator,
      redis,
      logger: logger.child({ component: "http" }),
      bodyLimitBytes: config.bodyLimitBytes,
      keys,
      requestTimeoutMs: config.requestTimeoutMs,
      audio: { maxBytes: config.maxAudioBytes, maxSeconds: config.maxAudioSeconds },
      metricsToken: config.metricsToken,
      adminQueuesWritable: config.adminQueuesWritable,
      batches,
      lanes,
      streams,
      tenantStreams: new TenantStreams({ max: config.maxStreamsPerTenant }),
      leases,
      quotas: new TenantQuotas({
        redis,
        keys,
        maxQueuedPerTenant: config.maxQueuedPerTenant,
        maxActive: config.tenantMaxActive,
        tokenBudget,
        audioBudget,
        shares: config.tenantShares,
      }),
      ...(options.extraRoutes ? { extraRoutes: options.extraRoutes } : {}),
    });
    // Slow clients cannot hold connections: headers, the whole request and each pause in a
    // body are time-limited (checked every second or so), and connections are capped.
    const server = createServer(
      { connectionsCheckingInterval: Math.max(250, Math.min(5000, Math.floor(config.bodyTimeoutMs / 4) || 5000)) },
      app,
    );
    server.requestTimeout = config.bodyTimeoutMs;
    server.headersTimeout =
      config.bodyTimeoutMs === 0 ? config.headersTimeoutMs : Math.min(config.headersTimeoutMs, config.bodyTimeoutMs);
    server.maxConnections = config.maxConnections;
    if (config.bodyIdleTimeoutMs > 0) {
      server.on("request", (req: IncomingMessage) => limitBodyPauses(req, config.bodyIdleTimeoutMs));
    }
    await listen(server, config.port, config.host);
    const port = (server.address() as AddressInfo).port;
    const url = `http://${urlHost(config.host)}:${port}`;
    log.info({ url, models: catalog.list().length }, "scheduler listening");
    batches.start();

    const graceMs = options.shutdownGraceMs ?? 10_000;
    let closing: Promise<void> | null = null;
    return {
      url,
      port,
      rescanModels: async () => {
        await scanned?.rescan();
      },
      close: () => {
        closing ??= (async () => {
          log.info("scheduler shutting down");
          const closed = new Promise<void>((resolve) => server.close(() => resolve()));
          try {
            server.closeIdleConnections();
          } catch (error) {
            log.warn({ err: error }, "closing idle connections failed");
          }
          try {
            jobs.interruptWaits();
          } catch (error) {
            log.warn({ err: error }, "interrupting long polls failed");
          }
          let timer: NodeJS.Timeout | undefined;
          const drained = await Promise.race([
            closed.then(() => true),
            new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
          ]);
          clearTimeout(timer);
          if (!drained) {
            log.warn({ graceMs }, "requests still in flight after the grace period; closing their connections");
            try {
              server.closeAllConnections();
            } catch (error) {
              log.warn({ err: error }, "closing connections failed");
            }
            await closed;
          }
          await runCleanup();
          log.info("scheduler stopped");
        })();
        return closing;
      },
    };
  } catch (error) {
    await runCleanup();
    throw error;
  }
}

/**
 * Closes the connection when the body of `req` pauses longer than `idleMs`: the socket's
 * idle timeout runs while the body arrives (Node's server destroys a socket that times out
 * with no 'timeout' listener) and is lifted once the body has been read.
 */
function limitBodyPauses(req: IncomingMessage, idleMs: number): void {
  const length = req.headers["content-length"];
  const hasBody = (length !== undefined && length !== "0") || req.headers["transfer-encoding"] !== undefined;
  if (!hasBody || req.complete) return;
  const socket = req.socket;
  socket.setTimeout(idleMs);
  const lift = () => socket.setTimeout(0);
  req.once("end", lift);
  req.once("close", lift);
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

/** A host for URLs: wildcard binds become loopback, IPv6 gets brackets. */
function urlHost(host: string): string {
  if (host === "0.0.0.0" || host === "") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** QUIT, or a hard disconnect when Redis does not answer within a second (it may be down). */
async function quitRedis(redis: Redis): Promise<void> {
  if (redis.status === "end") return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.quit().catch(() => undefined),
      new Promise((resolve) => (timer = setTimeout(resolve, 1000))),
    ]);
  } finally {
    clearTimeout(timer);
    redis.disconnect();
  }
}
