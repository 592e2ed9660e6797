import type {
  CatalogModel,
  FinishReason,
  JobPayload,
  JobToolCall,
  TokenLogprob,
  TranscriptionResult,
  Usage,
} from "@corral/shared";

/** What one run of a job produced. */
export interface RunOutput {
  text: string;
  finish_reason: FinishReason;
  usage: Usage;
  /** Prompt tokens kept in the sequence from an earlier job, not evaluated again (prefix reuse). */
  reused_prompt_tokens?: number;
  ttft_ms: number | null;
  generation_ms: number;
  /** Embedding jobs: one vector per input. */
  embeddings?: number[][];
  /** Jobs with `logprobs`: one per token of `text`. */
  logprobs?: TokenLogprob[];
  /** Chat jobs on a reasoning model: its thoughts, apart from `text`. */
  reasoning?: string;
  /** Chat jobs with tools: the calls the reply made. */
  tool_calls?: JobToolCall[];
  /** Transcription and translation jobs: language, duration and segments (`usage.audio_seconds` too). */
  transcription?: TranscriptionResult;
}

/** A model loaded by the engine, with `sequences` parallel sequences. */
export interface ModelHandle {
  run(
    job: JobPayload,
    options: {
      signal: AbortSignal;
      onText: (text: string, logprobs?: TokenLogprob[]) => void;
      onReasoning?: (text: string) => void;
      /** Transcription and translation jobs: the uploaded audio's bytes. */
      audio?: Uint8Array;
    },
  ): Promise<RunOutput>;
  dispose(): Promise<void>;
  /** How long the load took, ms. */
  readonly loadMs: number;
}

/** The part of the engine (`Engine` in ../engine) the claim loop needs. */
export interface ModelEngine {
  load(options: {
    modelId: string;
    path: string;
    contextSize: number;
    sequences: number;
    /** Which engine loads it: llama.cpp (`llm`, the default) or whisper.cpp (`whisper`). */
    kind?: CatalogModel["kind"];
  }): Promise<ModelHandle>;
  /** Disposes every model and llama.cpp. */
  close(): Promise<void>;
}

/** How the claim loop treats a failure, decided by the engine's typed errors. */
export type FailureKind =
  /** Loading ran out of memory: put the job back without spending an attempt, mark the model not fitting here. */
  | "out-of-memory"
  /** Not the job's fault (its model was unloaded under it): put it back without spending an attempt. */
  | "release"
  /** The job cannot succeed (missing or corrupt model file, prompt too long, bad schema): fail, no retry. */
  | "unrecoverable"
  /** Anything else: fail this attempt; BullMQ retries while attempts remain. */
  | "retryable";

/** This slot as the claim loop and heartbeats see it. */
export interface SlotIdentity {
  /** `${workerId}:gpu0`, `${workerId}:cpu1`: heartbeat key, `worker` field of job records. */
  id: string;
  /** `gpu0`, `cpu1`. */
  name: string;
  kind: "gpu" | "cpu";
  /** nvidia-smi index of the slot's GPU; null for CPU slots. */
  gpuIndex: number | null;
}

/** A counter, as prom-client's `Counter` offers it. */
export interface CountMetric<Label extends string> {
  inc(labels: Record<Label, string>, value?: number): void;
}

/** A histogram, as prom-client's `Histogram` offers it. */
export interface ObserveMetric<Label extends string> {
  observe(labels: Record<Label, string>, value: number): void;
}

/** The metrics the claim code records (`SlotMetrics` in ../slot implements them). */
export interface ClaimMetrics {
  /** Finished jobs by `status`: succeeded, failed, cancelled, or retried. */
  readonly jobsCompleted: CountMetric<"model" | "status">;
  readonly tokensGenerated: CountMetric<"model">;
  readonly promptTokens: CountMetric<"model">;
  /** Prompt tokens found in the sequence from an earlier job and not evaluated again (prefix reuse). */
  readonly promptTokensReused: CountMetric<"model">;
  /** Seconds. */
  readonly timeToFirstToken: ObserveMetric<"model">;
  /** Seconds, by phase: queue, load, generate, total. */
  readonly jobDuration: ObserveMetric<"model" | "phase">;
  /** Seconds. */
  readonly modelLoad: ObserveMetric<"model">;
  readonly oomReleases: CountMetric<"model">;
  readonly jobsParked: CountMetric<"model">;
  /** Tokens (prompt + completion) of each tenant's jobs that ended (succeeded or cancelled). */
  readonly tenantServiceTokens: CountMetric<"tenant">;
  /** Seconds from a job's creation to a slot starting it, by tenant. */
  readonly tenantWait: ObserveMetric<"tenant">;
  /** Seconds of audio transcribed or translated (jobs that succeeded). */
  readonly audioSeconds: CountMetric<"model">;
  /** Audio seconds per wall second of each transcription or translation run (decode and whisper.cpp). */
  readonly realTimeFactor: ObserveMetric<"model">;
  /** Sequences generating right now on the slot. */
  setBusy(sequences: number): void;
  setLoaded(model: string, loaded: boolean): void;
}
