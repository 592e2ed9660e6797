export { WhisperEngine, checkWhisperFile, type WhisperEngineOptions } from "./whisper-engine.js";
export { WhisperModel, type WhisperModelOptions, type WhisperRunOptions } from "./whisper-model.js";
