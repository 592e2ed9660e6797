export { main, buildProgram, reportError } from "./main.js";
export { CliError, ExitCode, EXIT_USAGE } from "./errors.js";
export { CLIENT_ENV, loadConfig, type ClientConfig } from "./env.js";
export {
  SchedulerClient,
  SchedulerHttpError,
  type JobSubmission,
  type ModelEntry,
  type SchedulerClientOptions,
} from "./client/scheduler-client.js";
export {
  DEMO_MODEL_FILE,
  DEMO_MODEL_URI,
  ensureDemoModel,
  listGgufFiles,
  type EnsureDemoModelOptions,
  type EnsureDemoModelResult,
} from "./demo/ensure-demo-model.js";
export { runDemo, pickDemoModel, slotName, type DemoSummary, type RunDemoOptions } from "./demo/run-demo.js";
export { DEMO_PROMPTS, type DemoPrompt } from "./demo/prompts.js";
export {
  addEnvOptions,
  flagsAsVariables,
  isBooleanVariable,
  mergeSpecs,
  type EnvOptionMap,
  type EnvVariableSpec,
} from "./options/env-options.js";
export { pingRedis, startLocalRedis, findExecutable, freePort, type LocalRedis } from "./local/redis.js";
export { formatTable, formatBytes, formatAge } from "./output/table.js";
export { formatWorkersTable } from "./commands/workers.js";
export { formatModelsTable } from "./commands/models.js";
export { checkNodeVersion, formatCheck, type CheckResult } from "./commands/doctor.js";
export { formatLocalModelsTable, formatInspection } from "./commands/models.js";
export { PullError, type PullErrorCode } from "./models/errors.js";
export { parseModelRef, matchesQuant, splitParts, type ModelRef } from "./models/model-ref.js";
export { HfClient, type RemoteFile, type HfClientOptions } from "./models/hf-client.js";
export { downloadFile, type PullProgress } from "./models/download-file.js";
export {
  pullModel,
  partFileName,
  type PullModelOptions,
  type PullModelResult,
  type PulledFile,
} from "./models/pull-model.js";
export { lineProgress, barProgress } from "./models/pull-progress.js";
export { listLocalModels, findModelFile, quantizationName, type LocalModel } from "./models/local-models.js";
export {
  inspectModel,
  INSPECT_CONTEXT_SIZES,
  type ModelInspection,
  type ContextEstimate,
} from "./models/inspect-model.js";
export { MODELS_ENV, HF_TOKEN_VARIABLE, loadModelsConfig, type ModelsConfig } from "./models/models-env.js";
export { readElfDynamic, type ElfDynamicInfo } from "./doctor/read-elf.js";
export { findCudaBinaries, describeCudaLibrary, type CudaBinary } from "./doctor/cuda-binaries.js";
export {
  checkCudaDriver,
  checkComputeCapability,
  missingLibraries,
  probeCudaBackend,
  usableCudaBinary,
} from "./doctor/cuda-checks.js";
export { checkModelFit } from "./doctor/model-fit.js";
export { checkRedisServer } from "./commands/doctor.js";
