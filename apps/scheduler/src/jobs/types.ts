import type { ReplicaWait } from "./replica-wait.js";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type {
  CorralError,
  JobChatMessage,
  LogitBias,
  JobPayload,
  JobRecord,
  JobSource,
  JobStatus,
  JobTools,
  RedisKeys,
  ResponseFormat,
} from "@corral/shared";
import type { ModelCatalogView } from "../catalog/types.js";
import type { TokenBudget } from "./token-budget.js";
import type { AudioBudget } from "./audio-budget.js";
import type { LaneQueues } from "./lane-queues.js";
import type { PromptLengthGuard } from "../prompt-length/prompt-length-guard.js";

/**
 * What {@link JobService.submit} takes: a validated native `JobRequest`, or the same
 * parts mapped from an OpenAI request or a batch line. Exactly one of `prompt`,
 * `messages` or `input` should be set; it decides the job's kind unless `kind` is given.
 */
export interface JobInput {
  model: string;
  prompt?: string;
  messages?: JobChatMessage[];
  /** Embedding inputs. */
  input?: string[];
  /** @defaultValue 256 */
  max_tokens?: number;
  /**
   * `max_tokens` is a default, not the client's (an OpenAI chat without `max_tokens` runs until
   * its context is full): the prompt only needs room for one token, and the worker cuts
   * `max_tokens` to the room left. @defaultValue false
   */
  max_tokens_is_default?: boolean;
  /** @defaultValue 0.8 */
  temperature?: number;
  top_p?: number;
  top_k?: number;
  seed?: number;
  stop?: string[];
  response_format?: ResponseFormat;
  frequency_penalty?: number;
  presence_penalty?: number;
  logit_bias?: LogitBias;
  /** Record each generated token's logprob (`result.logprobs`, and in the token stream). */
  logprobs?: boolean;
  /** With `logprobs`: alternatives listed per token (0–20). */
  top_logprobs?: number;
  /** Chats: the functions the model may call, and how (OpenAI `tools`, `tool_choice`). */
  tools?: JobTools;
  /** Chats on reasoning models: the thought-token budget (absent: `REASONING_EFFORT_BUDGETS.medium`). */
  reasoning_budget?: number;
  /** Client priority, 1 (most urgent) to 100. @defaultValue 50 */
  priority?: number;
  metadata?: Record<string, string>;
  /**
   * Whether the worker appends tokens to the job's Redis stream. Only the OpenAI routes read it
   * (their SSE relay, which sets it); native and batch jobs have no reader, so they do not stream.
   * @defaultValue false
   */
  stream?: boolean;
  kind?: JobPayload["kind"];
  /** Transcription and translation jobs: the upload, checked and measured by the route. */
  audio?: AudioUpload;
  /** Transcription jobs: the spoken language (`en`); absent: detect it. */
  language?: string;
  /** Transcription and translation jobs: time each word too. */
  word_timestamps?: boolean;
}

/** An audio upload as a route received it: the bytes as they came, and their decoded length. */
export interface AudioUpload {
  data: Buffer;
  /** Seconds of decoded audio (measured by decoding, not read from headers). */
  seconds: number;
  /** The upload's file name (a hint for the decoder's format probe). */
  filename: string;
}

export interface SubmitOptions {
  /** Where the job came from; decides the priority band (openai < native < batch). */
  source: JobSource;
  /** Client priority 1–100, overriding `input.priority`. */
  priority?: number;
}

/** One job of {@link JobService.submitMany}. */
export interface BulkJob {
  /** The job id, chosen by the caller (deterministic ids make a resubmission a no-op). */
  id: string;
  input: JobInput;
  /** Batch lines: the batch and the line's custom_id, recorded on the job record. */
  batch_id?: string;
  custom_id?: string;
}

/** What {@link JobService.submitMany} did: the queued records, and the jobs refused with why (by input index). */
export interface BulkSubmitResult {
  queued: JobRecord[];
  rejected: { index: number; job: BulkJob; error: CorralError }[];
  /**
   * The index of the first valid job that did not fit the tenant's queued limits: it and
   * the valid jobs after it were not queued. Null when every valid job was.
   */
  waiting: number | null;
}

export interface ListOptions {
  status?: JobStatus;
  /** 1–100. @defaultValue 20 */
  limit?: number;
  /** A job id: list the jobs created before it. */
  after?: string;
}

/** One page of a tenant's jobs, newest first, in OpenAI's list shape. */
export interface JobPage {
  object: "list";
  data: JobRecord[];
  has_more: boolean;
  first_id: string | null;
  last_id: string | null;
}

export interface JobServiceOptions {
  /** Command connection: records, lanes, publishing (the caller owns it). */
  redis: Redis;
  keys: RedisKeys;
  catalog: ModelCatalogView;
  logger: Logger;
  /** The lanes' Queues; the service owns and closes them when it created them. @defaultValue one on `redis` */
  lanes?: LaneQueues;
  /**
   * Creates the dedicated connection for job events (subscribed once, on first wait).
   * @defaultValue `redis.duplicate()`
   */
  createSubscriber?: () => Redis;
  /** Attempts per job. @defaultValue 3 */
  attempts?: number;
  /** Most queued jobs per tenant. @defaultValue 10000 */
  maxQueuedPerTenant?: number;
  /**
   * Most bytes of queued work per tenant held in Redis (records and payloads of its queued
   * jobs and pending batch lines); 0: no limit. @defaultValue 0
   */
  maxQueuedBytesPerTenant?: number;
  /** First retry delay (exponential backoff), ms. @defaultValue 1000 */
  backoffMs?: number;
  /**
   * Fair-claim weights (`CORRAL_TENANT_SHARES`): backlogged tenants are served tokens in
   * proportion. @defaultValue every tenant 1
   */
  shares?: ReadonlyMap<string, number>;
  /** Credit of a tenant that starts waiting, weighted tokens. @defaultValue {@link DEFAULT_FAIR_CREDIT_TOKENS} */
  fairCreditTokens?: number;
  /**
   * Most running jobs per tenant (`*`: every tenant not named), stamped on each job as
   * `max_active` for the workers to enforce. @defaultValue none (no limit)
   */
  maxActive?: ReadonlyMap<string, number>;
  /** Daily token budgets: a tenant at its budget gets 429 on new jobs. @defaultValue none (no budgets) */
  tokenBudget?: TokenBudget;
  /**
   * Counts each completion and chat prompt with its model's vocabulary and refuses one that
   * cannot fit the context (400). @defaultValue none (the worker refuses it when it runs)
   */
  promptLength?: PromptLengthGuard;
  /** Called after each successful submit (metrics), with a transcription's seconds of audio (else 0). @defaultValue none */
  onSubmitted?: (record: JobRecord, audioSeconds: number) => void;
  /** Waits for replicas before a submit is answered (CORRAL_REDIS_WAIT_REPLICAS). @defaultValue no wait */
  replicaWait?: ReplicaWait;
  /**
   * Counts transcriptions' audio seconds against each tenant's day (and refuses past a budget).
   * @defaultValue none (audio is not counted)
   */
  audioBudget?: AudioBudget;
  /**
   * How long a queued transcription's audio is kept in Redis (`CORRAL_AUDIO_TTL`); its worker
   * deletes it sooner, when the job ends. @defaultValue {@link DEFAULT_AUDIO_TTL_MS}
   */
  audioTtlMs?: number;
  /** @defaultValue Date.now */
  clock?: () => number;
}
