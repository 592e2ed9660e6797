import type { Logger } from "pino";
import type { FailureKind, ModelEngine } from "../claim/types.js";
import { Engine, ModelDisposedError, isOutOfMemory, isUnrecoverable, type JobLimits } from "../engine/index.js";

/** The node-llama-cpp engine of a slot: GPU "auto" for GPU slots (CPU when no GPU backend works), CPU otherwise. */
export function createDefaultEngine(options: {
  gpu: boolean;
  threads: number;
  calibrateThreads: boolean;
  limits: JobLimits;
  prefixReuse: boolean;
  modelsDir: string;
  logger: Logger;
}): Promise<ModelEngine> {
  return Engine.create({
    gpu: options.gpu ? "auto" : false,
    threads: options.threads,
    calibrateThreads: options.calibrateThreads,
    limits: options.limits,
    prefixReuse: options.prefixReuse,
    modelsDir: options.modelsDir,
    logger: options.logger,
  });
}

/** Sorts the engine's typed errors into what the claim loop does with the job. */
export function classifyEngineError(error: unknown): FailureKind {
  if (isOutOfMemory(error)) return "out-of-memory";
  if (error instanceof ModelDisposedError) return "release";
  if (isUnrecoverable(error)) return "unrecoverable";
  return "retryable";
}
