export { Engine } from "./engine.js";
export { LoadedModel } from "./loaded-model.js";
export type { EngineBackend, EngineOptions, EngineResult, LoadOptions, RunOptions } from "./types.js";
export {
  InvalidJobError,
  InvalidLogitBiasError,
  ModelDisposedError,
  ModelFileError,
  OutOfMemoryError,
  PromptTooLongError,
  JobLimitError,
  isOutOfMemory,
  isUnrecoverable,
} from "./errors.js";
export { UnsupportedSchemaError, normalizeJsonSchemaForGrammar, validateJsonSchemaForGrammar } from "@corral/shared";
export { checkModelFile, modelFilePath } from "./model-file.js";
export { LimitWatch, type JobLimits } from "./limit-watch.js";
export { SequencePool } from "./sequence-pool.js";
export { WhisperEngine, WhisperModel, checkWhisperFile, type WhisperEngineOptions } from "./whisper/index.js";
