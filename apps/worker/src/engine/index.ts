export { Engine } from "./engine.js";
export { LoadedModel, toChatHistory } from "./loaded-model.js";
export type { EngineBackend, EngineOptions, EngineResult, LoadOptions, RunOptions } from "./types.js";
export {
  InvalidJobError,
  ModelDisposedError,
  ModelFileError,
  OutOfMemoryError,
  PromptTooLongError,
  UnsupportedSchemaError,
  isOutOfMemory,
  isUnrecoverable,
} from "./errors.js";
export { normalizeJsonSchemaForGrammar, validateJsonSchemaForGrammar } from "./json-schema.js";
export { checkModelFile } from "./model-file.js";
export { SequencePool } from "./sequence-pool.js";
