export { loadConfig, SCHEDULER_ENV, type SchedulerConfig, type EnvVariable, type ApiKeyEntry } from "./env.js";
export { startScheduler, type RunningScheduler, type StartSchedulerOptions } from "./server.js";
export { createApp, type AppDeps } from "./app.js";
export { main } from "./main.js";
export { JobService, DEFAULT_MAX_TOKENS, AUDIO_TOKENS_PER_SECOND, audioCost } from "./jobs/job-service.js";
export { AudioBudget, type AudioBudgetOptions } from "./jobs/audio-budget.js";
export { AudioBudgetExceededError } from "./jobs/errors.js";
export { formatTranscript, toSrt, toVtt, type Transcript } from "./api/audio/transcript-formats.js";
export type {
  JobInput,
  SubmitOptions,
  ListOptions,
  JobPage,
  JobServiceOptions,
  BulkJob,
  BulkSubmitResult,
  AudioUpload,
} from "./jobs/types.js";
export { LaneQueues, type LaneQueuesOptions, type LaneCounts } from "./jobs/lane-queues.js";
export { JobEvents, type JobEventsOptions, type WaitOutcome } from "./jobs/job-events.js";
export { TenantQueueCap, type TenantQueueCapOptions } from "./jobs/tenant-queue-cap.js";
export { JOB_ID_PATTERN, newJobId, assertJobId } from "./jobs/job-id.js";
export { WorkerRegistry, type WorkerRegistryOptions } from "./workers/worker-registry.js";
export { SchedulerMetrics, type SchedulerMetricsOptions } from "./metrics/scheduler-metrics.js";
export { ApiKeyAuthenticator, bearerToken, type ApiKeyAuthenticatorOptions } from "./auth/api-key-authenticator.js";
export { authenticate, requireAdmin, principalOf } from "./auth/authenticate.js";
export { ADMIN_TENANT, OPEN_TENANT, type Principal } from "./auth/principal.js";
export { errorHandler, notFoundHandler } from "./http/error-handler.js";
export { jsonBody } from "./http/json-body.js";
export { invalidRequestFromZod, issueParam } from "./http/zod-error.js";
export { errorBody, UnsupportedMediaTypeError, RouteNotFoundError, type ErrorBody } from "./http/errors.js";
export { toModelObject, type ModelObject } from "./api/models/model-object.js";
export { TenantQuotas, type QuotaObject, type TenantQuotasOptions } from "./jobs/tenant-quotas.js";
export * from "./catalog/index.js";
export * from "./files/index.js";
export * from "./batches/index.js";
export { batchesRouter, type BatchesRouterOptions } from "./api/batches/batches-router.js";
export {
  PromptLengthGuard,
  type PromptLengthGuardOptions,
  type PromptJob,
} from "./prompt-length/prompt-length-guard.js";
export { ModelTokenizer } from "./prompt-length/model-tokenizer.js";
