export type { ModelCatalogView } from "./types.js";
export { ModelCatalog, readCatalog, type ModelCatalogOptions } from "./model-catalog.js";
export { scanModels, type ScanModelsOptions } from "./scan-models.js";
export {
  estimateResources,
  inspectGguf,
  InvalidGgufError,
  type GgufSummary,
  type ResourceEstimate,
} from "./inspect-gguf.js";
export { MODELS_FILE_NAME, ModelsFile, ModelsFileEntry, parseModelsFile, readModelsFile } from "./models-file.js";
export { ModelsFileError } from "./errors.js";
export {
  estimateWhisperMemory,
  inspectWhisper,
  InvalidWhisperModelError,
  whisperParameters,
  type WhisperHparams,
  type WhisperSummary,
} from "./inspect-whisper.js";
