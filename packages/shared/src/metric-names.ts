/** Metric names, in one place. Base units, `_total` for counters. See docs/metrics.md. */
export const METRIC = {
  // scheduler
  httpRequestDuration: "corral_http_request_duration_seconds",
  jobsSubmitted: "corral_jobs_submitted_total",
  queueJobs: "corral_queue_jobs",
  workersOnline: "corral_workers_online",
  batches: "corral_batches",
  batchRequests: "corral_batch_requests",
  batchLinesIngested: "corral_batch_lines_ingested_total",
  tenantDailyTokens: "corral_tenant_daily_tokens",
  tenantDailyTokenBudget: "corral_tenant_daily_token_budget",
  redisMemoryUsed: "corral_redis_memory_used_ratio",
  // worker
  gpuUtilization: "corral_gpu_utilization_ratio",
  gpuMemoryUsed: "corral_gpu_memory_used_bytes",
  gpuMemoryTotal: "corral_gpu_memory_total_bytes",
  gpuTemperature: "corral_gpu_temperature_celsius",
  gpuPower: "corral_gpu_power_watts",
  jobsCompleted: "corral_jobs_completed_total",
  tokensGenerated: "corral_tokens_generated_total",
  promptTokens: "corral_prompt_tokens_total",
  timeToFirstToken: "corral_time_to_first_token_seconds",
  jobDuration: "corral_job_duration_seconds",
  modelLoad: "corral_model_load_seconds",
  modelLoaded: "corral_model_loaded",
  slotBusySequences: "corral_slot_busy_sequences",
  oomReleases: "corral_oom_releases_total",
  jobsParked: "corral_jobs_parked_total",
  // worker supervisor
  slotUp: "corral_slot_up",
  slotRestarts: "corral_slot_restarts_total",
  jobsRecovered: "corral_jobs_recovered_total",
} as const;
