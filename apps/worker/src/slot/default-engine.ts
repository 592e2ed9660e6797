import type { Logger } from "pino";
import type { FailureKind, ModelEngine } from "../claim/types.js";

/** Placeholder until the engine module lands. */
export async function createDefaultEngine(_options: {
  gpu: boolean;
  threads: number;
  logger: Logger;
}): Promise<ModelEngine> {
  throw new Error("the engine module is not available yet");
}

export function classifyEngineError(_error: unknown): FailureKind {
  return "retryable";
}
