export {
  BatchStore,
  liveRequestCounts,
  type BatchCounters,
  type IngestProgress,
  type ListBatchesOptions,
} from "./batch-store.js";
export { BatchProcessor, LeaseLostError, type BatchProcessorOptions, type Lease } from "./batch-processor.js";
export { BatchRunner, type BatchRunnerOptions } from "./batch-runner.js";
export { BatchService, COMPLETION_WINDOW_MS, type BatchServiceOptions, type BatchPage } from "./batch-service.js";
export { BatchMetrics, type BatchMetricsOptions } from "./batch-metrics.js";
export { validateInput, type InputCheck, type ValidateInputOptions } from "./validate-input.js";
export {
  checkLine,
  parseLineBody,
  outputLine,
  faultResult,
  ENDPOINT_KIND,
  type LineKind,
  type RequestLine,
  type ReplyShape,
  type Closing,
} from "./batch-lines.js";
export {
  BATCH_ID_PATTERN,
  newBatchId,
  assertBatchId,
  lineJobId,
  lineRequestId,
  outputFileId,
  errorFileId,
  inputCopyName,
} from "./batch-id.js";
export { createBatchSystem, type BatchSystem, type BatchSystemOptions } from "./batch-system.js";
