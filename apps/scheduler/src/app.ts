import express, { type Express } from "express";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { RedisKeys } from "@corral/shared";
import "./http/locals.js";
import { adminAuth, createBullBoardRouter } from "./admin/index.js";
import { batchesRouter } from "./api/batches/batches-router.js";
import { healthRouter } from "./api/health/health-router.js";
import type { TenantStreams } from "./api/connections/tenant-streams.js";
import { jobsRouter } from "./api/jobs/jobs-router.js";
import { QueuePositions } from "./jobs/queue-positions.js";
import { modelsRouter } from "./api/models/models-router.js";
import { openaiRouter } from "./api/openai/openai-router.js";
import { audioRouter } from "./api/audio/audio-router.js";
import type { StreamHub } from "./api/openai/stream-hub.js";
import type { InteractiveLeases } from "./jobs/interactive-leases.js";
import { queueRouter } from "./api/queue/queue-router.js";
import { quotaRouter } from "./api/quota/quota-router.js";
import { workersRouter } from "./api/workers/workers-router.js";
import type { ApiKeyAuthenticator } from "./auth/api-key-authenticator.js";
import { authenticate } from "./auth/authenticate.js";
import { consoleRouter } from "./console/console-router.js";
import type { BatchSystem } from "./batches/batch-system.js";
import type { ModelCatalogView } from "./catalog/types.js";
import { filesRouter } from "./files/files-router.js";
import { errorHandler, notFoundHandler } from "./http/error-handler.js";
import { requestContext } from "./http/request-context.js";
import type { JobService } from "./jobs/job-service.js";
import type { LaneQueues } from "./jobs/lane-queues.js";
import type { TenantQuotas } from "./jobs/tenant-quotas.js";
import type { SchedulerMetrics } from "./metrics/scheduler-metrics.js";
import type { WorkerRegistry } from "./workers/worker-registry.js";

/** What the HTTP app needs; all of it is created (and closed) by the caller. */
export interface AppDeps {
  jobs: JobService;
  catalog: ModelCatalogView;
  workers: WorkerRegistry;
  metrics: SchedulerMetrics;
  authenticator: ApiKeyAuthenticator;
  /** Command connection, for `/readyz`. */
  redis: Redis;
  logger: Logger;
  /** Largest JSON body, in bytes. */
  bodyLimitBytes: number;
  /** Redis key names (the OpenAI routes read token streams). */
  keys: RedisKeys;
  /** Longest an OpenAI request waits for its jobs, ms (0: no limit). */
  requestTimeoutMs: number;
  /**
   * Limits of `/v1/audio/*` uploads: bytes, and seconds of decoded audio.
   * @defaultValue 25 MiB and 3600 s (CORRAL_MAX_AUDIO_BYTES, CORRAL_MAX_AUDIO_SECONDS)
   */
  audio?: { maxBytes: number; maxSeconds: number };
  /**
   * Bearer token `/metrics` requires.
   * @defaultValue null (open)
   */
  metricsToken?: string | null;
  /**
   * Let bull-board change queues.
   * @defaultValue false (read-only)
   */
  adminQueuesWritable?: boolean;
  /** Files and batches (`/v1/files`, `/v1/batches`); absent: not served. */
  batches?: BatchSystem;
  /** Every model lane, for the bull-board queue UI at `/admin/queues`. */
  lanes: LaneQueues;
  /** Each tenant's quotas and usage (`GET /v1/quota`). */
  quotas: TenantQuotas;
  /** Reads every streaming request's token streams over one connection. */
  streams: StreamHub;
  /** Each tenant's open SSE streams and long polls in this process. @defaultValue no limit */
  tenantStreams?: TenantStreams;
  /** Leases on the jobs of open OpenAI requests. @defaultValue none (such jobs outlive a dead scheduler) */
  leases?: InteractiveLeases;
  /**
   * Mounts more routes, after the request context (ids, the access log line, the duration
   * histogram) and before the API, so they cost what any route of this server costs. The
   * HTTP benchmark mounts its hello-world route here.
   */
  extraRoutes?: (app: Express) => void;
  /**
   * The built console's folder, served at `/console` (`/` redirects there); null: no console.
   * @defaultValue apps/console/dist (DEFAULT_CONSOLE_DIR in console/console-router.ts)
   */
  consoleDir?: string | null;
}

const QUIET_PATHS = new Set(["/healthz", "/readyz", "/metrics"]);

/** The scheduler's express app: the authenticated `/v1` API, health and metrics (open), and the admin queue UI. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);

  app.use(requestContext({ logger: deps.logger, duration: deps.metrics.httpRequestDuration, quietPaths: QUIET_PATHS }));
  deps.extraRoutes?.(app);

  // Each router is mounted at its own prefix, so a request only enters the one it needs;
  // the job routes, the busiest, come first.
  app.use("/v1", authenticate(deps.authenticator));
  app.use(
    "/v1/jobs",
    jobsRouter({
      jobs: deps.jobs,
      bodyLimitBytes: deps.bodyLimitBytes,
      ...(deps.tenantStreams ? { streams: deps.tenantStreams } : {}),
      positions: new QueuePositions({
        redis: deps.redis,
        keys: deps.keys,
        logger: deps.logger.child({ component: "queue-positions" }),
      }),
    }),
  );
  app.use(
    "/v1/audio",
    audioRouter({
      jobs: deps.jobs,
      workers: deps.workers,
      streams: deps.streams,
      keys: deps.keys,
      maxBytes: deps.audio?.maxBytes ?? 25 * 1024 * 1024,
      maxSeconds: deps.audio?.maxSeconds ?? 3600,
      requestTimeoutMs: deps.requestTimeoutMs,
      ...(deps.tenantStreams ? { tenantStreams: deps.tenantStreams } : {}),
      ...(deps.leases ? { leases: deps.leases } : {}),
    }),
  );
  app.use(
    "/v1",
    openaiRouter({
      jobs: deps.jobs,
      workers: deps.workers,
      streams: deps.streams,
      keys: deps.keys,
      bodyLimitBytes: deps.bodyLimitBytes,
      requestTimeoutMs: deps.requestTimeoutMs,
      ...(deps.tenantStreams ? { tenantStreams: deps.tenantStreams } : {}),
      ...(deps.leases ? { leases: deps.leases } : {}),
    }),
  );
  if (deps.batches) {
    app.use("/v1/files", filesRouter(deps.batches.files));
    app.use("/v1/batches", batchesRouter({ batches: deps.batches.batches, bodyLimitBytes: deps.bodyLimitBytes }));
  }
  app.use("/v1/models", modelsRouter(deps.catalog));
  app.use("/v1/workers", workersRouter(deps.workers));
  app.use("/v1/quota", quotaRouter(deps.quotas));
  app.use(
    "/v1/queue",
    queueRouter({
      lanes: deps.lanes,
      catalog: deps.catalog,
      redis: deps.redis,
      keys: deps.keys,
      logger: deps.logger.child({ component: "queue" }),
    }),
  );

  app.use(
    healthRouter({ redis: deps.redis, registry: deps.metrics.registry, metricsToken: deps.metricsToken ?? null }),
  );

  // bull-board: admin key only, as Bearer or as the Basic-auth password (browsers cannot send Bearer).
  app.use(
    "/admin/queues",
    adminAuth(deps.authenticator),
    createBullBoardRouter({
      queues: async () => (await deps.lanes.known()).map((lane) => deps.lanes.get(lane)),
      basePath: "/admin/queues",
      readOnly: !(deps.adminQueuesWritable ?? false),
    }),
  );

  if (deps.consoleDir !== null) {
    app.use("/console", consoleRouter(deps.consoleDir));
    app.get("/", (_req, res) => res.redirect(302, "/console/"));
  }

  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}
