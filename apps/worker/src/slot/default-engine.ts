import type { Logger } from "pino";
import { AudioExpiredError } from "../claim/job-audio.js";
import type { FailureKind, ModelEngine } from "../claim/types.js";
import {
  Engine,
  ModelDisposedError,
  WhisperEngine,
  isOutOfMemory,
  isUnrecoverable,
  type JobLimits,
} from "../engine/index.js";
import { SlotEngine } from "./slot-engine.js";

/**
 * The engines of a slot: node-llama-cpp for `llm` models (GPU "auto" for GPU slots, CPU
 * when no GPU backend works, CPU otherwise) and whisper.cpp for `whisper` models (the CPU
 * build of @napi-rs/whisper, at the slot's threads).
 */
export async function createDefaultEngine(options: {
  gpu: boolean;
  threads: number;
  calibrateThreads: boolean;
  limits: JobLimits;
  prefixReuse: boolean;
  modelsDir: string;
  logger: Logger;
}): Promise<ModelEngine> {
  const llm = await Engine.create({
    gpu: options.gpu ? "auto" : false,
    threads: options.threads,
    calibrateThreads: options.calibrateThreads,
    limits: options.limits,
    prefixReuse: options.prefixReuse,
    modelsDir: options.modelsDir,
    logger: options.logger,
  });
  const whisper = await WhisperEngine.create({
    // 0 (llama.cpp's "all cores") is not a whisper.cpp setting: whisper runs at least one.
    threads: Math.max(1, options.threads),
    modelsDir: options.modelsDir,
    logger: options.logger,
  });
  return new SlotEngine({ llm, whisper });
}

/** Sorts the engine's typed errors into what the claim loop does with the job. */
export function classifyEngineError(error: unknown): FailureKind {
  if (isOutOfMemory(error)) return "out-of-memory";
  if (error instanceof ModelDisposedError) return "release";
  if (isUnrecoverable(error) || error instanceof AudioExpiredError) return "unrecoverable";
  return "retryable";
}
