import { readFileSync } from "node:fs";
import { z } from "zod";
import {
  COMMON_ENV,
  CommonEnv,
  DEFAULT_FAIR_CREDIT_TOKENS,
  ConfigError,
  apiKeys,
  boolean,
  byteSize,
  colonPairList,
  duration,
  integer,
  isPlaceholderKey,
  optionalString,
  PLACEHOLDER_KEY_MESSAGE,
  commonConfig,
  parseEnv,
  port,
  type CommonConfig,
  type Env,
  type EnvVariableDoc,
} from "@corral/shared";

/** One environment variable the scheduler reads. The CLI derives a flag from each. */
export type EnvVariable = EnvVariableDoc;

/**
 * Every variable the scheduler reads, documented: the ones it shares with the workers
 * (COMMON_ENV) first. docs/configuration.md is written from this.
 */
export const SCHEDULER_ENV: ReadonlyArray<EnvVariable> = [
  ...COMMON_ENV,
  {
    name: "CORRAL_REDIS_WAIT_REPLICAS",
    default: "0",
    description:
      "Replicas that must hold a write before the scheduler acknowledges it (a job's 202, a created batch), with Redis's WAIT. 0: answer once the master has it; a failover right after may lose it.",
  },
  {
    name: "CORRAL_REDIS_WAIT_TIMEOUT_MS",
    default: "1000",
    description:
      "Longest WAIT for CORRAL_REDIS_WAIT_REPLICAS, in ms; when fewer replicas confirm in time the write is answered anyway and a warning is logged.",
  },
  {
    name: "CORRAL_CATALOG_RESCAN_MS",
    default: "30s",
    description:
      "How often the models folder is scanned again, so models added, removed or reconfigured in models.yaml are served without a restart (0: only at startup and on SIGHUP). The fallback for CORRAL_CATALOG_WATCH.",
  },
  {
    name: "CORRAL_CATALOG_WATCH",
    default: "true",
    description:
      "Watch the models folder: a .gguf or models.yaml added, removed or replaced is rescanned 500 ms after the folder goes quiet (at most 2 s into a burst of changes), so it is served (or gone) within about a second.",
  },
  {
    name: "CORRAL_MODEL_REMOVED_GRACE_MS",
    default: "10s",
    description:
      "A model that leaves the catalog and stays gone this long fails its waiting jobs with model_removed (HTTP 404); a file replaced within it fails nothing. Running jobs are left to their workers.",
  },
  { name: "CORRAL_PORT", default: "8080", description: "HTTP port of the API (0 picks a free port)." },
  {
    name: "CORRAL_HOST",
    default: "127.0.0.1",
    description: "Address the API binds to. Use 0.0.0.0 to accept connections from other machines.",
  },
  {
    name: "CORRAL_API_KEYS",
    default: null,
    description:
      "API keys as tenant:key pairs, comma-separated (keys of at least 16 characters). Unset: the API is open and every caller is tenant `default`, which the scheduler refuses on a non-loopback CORRAL_HOST unless CORRAL_ALLOW_OPEN is true.",
  },
  {
    name: "CORRAL_API_KEYS_FILE",
    default: null,
    description:
      "File holding the API keys instead of CORRAL_API_KEYS (tenant:key pairs, one a line or comma-separated; lines starting with # are comments), so keys need not sit in the environment or a unit file. Set one of the two.",
  },
  {
    name: "CORRAL_ALLOW_OPEN",
    default: "false",
    description:
      "Serve an open API (no CORRAL_API_KEYS: every caller is tenant `default` and sees every job and file) on a non-loopback CORRAL_HOST. Without it the scheduler refuses to start that way.",
  },
  {
    name: "CORRAL_ADMIN_KEY",
    default: null,
    description: "Key of the admin principal, accepted on every route and required on admin routes.",
  },
  {
    name: "CORRAL_METRICS_TOKEN",
    default: null,
    description:
      "When set, GET /metrics needs it as `Authorization: Bearer <token>` (the metrics name tenants). Unset: /metrics is open.",
  },
  {
    name: "CORRAL_ADMIN_QUEUES_WRITABLE",
    default: "false",
    description:
      "Let the admin pause, retry, promote and remove jobs in the bull-board UI at /admin/queues. Off: the board is read-only.",
  },
  {
    name: "CORRAL_BODY_LIMIT",
    default: "1mb",
    description:
      "Largest accepted JSON request body, and the largest batch input line (a longer line is an error of that line).",
  },
  {
    name: "CORRAL_REDIS_COMMAND_TIMEOUT_MS",
    default: "5s",
    description:
      "Longest a request waits on one Redis command (ioredis commandTimeout on the scheduler's request connection; the token-stream reader and the job-events subscriber block and have none). Past it, or while Redis is unreachable, the request is answered 503 redis_unavailable with Retry-After.",
  },
  {
    name: "CORRAL_REQUEST_TIMEOUT_MS",
    default: "10m",
    description: "Longest an OpenAI-style request waits for its jobs (504 after, and its jobs are cancelled).",
  },
  {
    name: "CORRAL_HEADERS_TIMEOUT_MS",
    default: "20s",
    description: "Longest a client may take to send a request's headers; the connection is closed after.",
  },
  {
    name: "CORRAL_BODY_TIMEOUT_MS",
    default: "1m",
    description:
      "Longest a client may take to send a whole request, headers and body (Node's server requestTimeout); the connection is closed after. Raise it for large file uploads over slow links.",
  },
  {
    name: "CORRAL_BODY_IDLE_TIMEOUT_MS",
    default: "10s",
    description: "Longest a request body may pause between two pieces; the connection is closed after (0: no limit).",
  },
  {
    name: "CORRAL_MAX_CONNECTIONS",
    default: "4096",
    description: "Most open client connections; further connections are refused (closed at once).",
  },
  {
    name: "CORRAL_CHECK_PROMPT_LENGTH",
    default: "true",
    description:
      "Count each completion and chat prompt with its model's vocabulary at submit (loaded alone, once per model) and refuse with a 400 context_length_exceeded one that cannot fit the model's context with its max_tokens. Off: such jobs are queued and fail at the worker.",
  },
  {
    name: "CORRAL_CONTEXT_SIZE",
    default: "4096",
    description:
      "Context size per sequence for models that models.yaml does not configure (capped at the training context).",
  },
  {
    name: "CORRAL_SEQUENCES",
    default: "4",
    description: "Parallel sequences per loaded model, unless models.yaml says otherwise.",
  },
  {
    name: "CORRAL_MAX_QUEUED_PER_TENANT",
    default: "10000",
    description:
      "Most queued jobs one tenant may have, pending batch lines included; further submissions get 429 queue_full and batch ingest waits.",
  },
  {
    name: "CORRAL_MAX_QUEUED_BYTES_PER_TENANT",
    default: "256MB",
    description:
      "Most bytes one tenant's queued jobs and pending batch lines may hold in Redis (each job's record and payload); further submissions get 429 queue_full and batch ingest waits. 0: no limit.",
  },
  {
    name: "CORRAL_MAX_ACTIVE_BATCHES_PER_TENANT",
    default: "100",
    description: "Most unfinished batches one tenant may have; POST /v1/batches past it gets 429 too_many_batches.",
  },
  {
    name: "CORRAL_MAX_STREAMS_PER_TENANT",
    default: "64",
    description:
      "Most open SSE streams and ?wait= long polls one tenant may hold on each scheduler (counted per process); past it, 429 too_many_streams with Retry-After.",
  },
  {
    name: "CORRAL_JOB_ATTEMPTS",
    default: "3",
    description: "Attempts per job before it fails (a worker crash or error uses one).",
  },
  {
    name: "CORRAL_TENANT_SHARES",
    default: null,
    description:
      "Fair-claim weights as tenant:share pairs, comma-separated (e.g. lab-a:2,lab-b:1): backlogged tenants are served tokens in proportion to their shares. A tenant not named has 1.",
  },
  {
    name: "CORRAL_FAIR_CREDIT_TOKENS",
    default: "4096",
    description:
      "Most weighted tokens (prompt + max tokens, over the share) a tenant that starts waiting may be served ahead of the tenants already waiting, so a light user's burst overtakes a heavy backlog; 0 gives none.",
  },
  {
    name: "CORRAL_TENANT_TOKENS_PER_DAY",
    default: null,
    description:
      "Daily token budgets (prompt + completion, per UTC day) as tenant:tokens pairs, comma-separated; * sets every other tenant's (e.g. lab-a:5000000,*:1000000). A tenant at its budget gets 429 insufficient_quota on new jobs and batches. Unset: no budgets.",
  },
  {
    name: "CORRAL_TENANT_AUDIO_SECONDS_PER_DAY",
    default: null,
    description:
      "Daily audio budgets (seconds of decoded audio sent to /v1/audio/*, per UTC day) as tenant:seconds pairs; * sets every other tenant's (e.g. lab-a:36000,*:3600). Counted at admission; a file that would pass the budget gets 429 insufficient_quota. Unset: no budgets.",
  },
  {
    name: "CORRAL_MAX_AUDIO_BYTES",
    default: "25MB",
    description:
      "Largest audio upload /v1/audio/transcriptions and /translations accept (413 file_too_large beyond), as on OpenAI.",
  },
  {
    name: "CORRAL_MAX_AUDIO_SECONDS",
    default: "3600",
    description:
      "Longest audio /v1/audio/transcriptions and /translations accept, in seconds of decoded audio (measured by decoding the upload, not read from its headers; 400 audio_too_long beyond).",
  },
  {
    name: "CORRAL_AUDIO_TTL",
    default: "1h",
    description:
      "How long a queued transcription's upload is kept in Redis (its worker deletes it when the job ends, a cancel while queued at once); at least CORRAL_REQUEST_TIMEOUT_MS plus a minute.",
  },
  {
    name: "CORRAL_TENANT_MAX_ACTIVE",
    default: null,
    description:
      "Most jobs of one tenant that run at once, across all workers, as tenant:count pairs, comma-separated; * sets every other tenant's (e.g. lab-a:8,*:2). Jobs over the limit wait (delayed) and run as the tenant's running jobs finish. Unset: no limit.",
  },
  {
    name: "CORRAL_DATA_DIR",
    default: "./data",
    description:
      "Folder of uploaded and generated files (batch inputs and outputs, in files/). Several schedulers must share it (a shared volume).",
  },
  {
    name: "CORRAL_MAX_FILE_BYTES",
    default: "200MB",
    description: "Largest file `POST /v1/files` accepts (413 beyond).",
  },
  {
    name: "CORRAL_TENANT_FILE_BYTES",
    default: "10GB",
    description:
      "Most bytes of files (uploads and batch output) one tenant may store; an upload past it gets 413 file_quota_exceeded.",
  },
  {
    name: "CORRAL_OUTPUT_FILE_TTL",
    default: "30d",
    description:
      "Batch output and error files expire (and are deleted) this long after they are written (0: never). Uploads expire only when they ask to (`expires_after`).",
  },
  {
    name: "CORRAL_FILE_SWEEP_MS",
    default: "10m",
    description:
      "How often expired files, and stored content no file names (an upload cut short), are deleted (0: never).",
  },
  {
    name: "CORRAL_FILE_ORPHAN_AGE",
    default: "1h",
    description: "Stored content that no file names is deleted by the sweep once it is this old.",
  },
  { name: "CORRAL_MAX_FILE_LINES", default: "1000000", description: "Most lines in an uploaded file (400 beyond)." },
  {
    name: "CORRAL_BATCH_CHUNK_LINES",
    default: "200",
    description: "Batch lines ingested per chunk (one records pipeline and one BullMQ addBulk per lane each).",
  },
  {
    name: "CORRAL_BATCH_LOOP_MS",
    default: "500",
    description: "How often each scheduler looks at the active batches.",
  },
  {
    name: "CORRAL_BATCH_LEASE_MS",
    default: "30s",
    description:
      "Lease of the scheduler working on a batch (renewed while it works); another scheduler takes a batch over this long after its holder died.",
  },
  {
    name: "CORRAL_BATCH_CANCEL_GRACE_MS",
    default: "30s",
    description:
      "After a batch is cancelled, how long its running lines get to stop before it is finalized without them.",
  },
];

const host = z.preprocess(
  (value) => (typeof value === "string" && value.trim() === "" ? undefined : value),
  z.string().regex(/^[A-Za-z0-9.:[\]-]{1,255}$/, "expected an IP address or host name such as 127.0.0.1 or 0.0.0.0"),
);

/**
 * Comma-separated `tenant:number` pairs (per-tenant settings), parsed to `[tenant, value]`.
 * `pattern` limits the tenant names; `value` checks each number, with `example` in its messages.
 */
function tenantNumbers(
  example: string,
  value: (message: string) => z.ZodType<number>,
  pattern = /^[A-Za-z0-9_.-]{1,64}$/,
) {
  const message = `expected tenant:number pairs, e.g. ${example}`;
  return z.preprocess(
    colonPairList((tenant, n) => [tenant, n === undefined ? Number.NaN : Number(n)]),
    z.array(z.tuple([z.string().regex(pattern, message), value(message)])).default([]),
  );
}

/** `lab-a:2,lab-b:1`: each tenant's fair-share weight. */
const tenantShares = tenantNumbers("lab-a:2,lab-b:1", (message) =>
  z.number({ message }).positive(`${message} (shares are positive)`).finite(message),
);

/** A tenant name, or `*` for every tenant not named. */
const TENANT_OR_STAR = /^(\*|[A-Za-z0-9_.-]{1,64})$/;

/** `lab-a:5000000,*:1000000`: each tenant's tokens per UTC day; `*` for every other tenant. */
const tokenBudgets = tenantNumbers(
  "lab-a:5000000,*:1000000",
  (message) =>
    z
      .number({ message })
      .int(`${message} (whole numbers of tokens)`)
      .positive(`${message} (positive numbers of tokens)`),
  TENANT_OR_STAR,
);

/** `lab-a:36000,*:3600`: each tenant's seconds of audio per UTC day; `*` for every other tenant. */
const audioBudgets = tenantNumbers(
  "lab-a:36000,*:3600",
  (message) => z.number({ message }).positive(`${message} (positive numbers of seconds)`).finite(message),
  TENANT_OR_STAR,
);

const SchedulerEnv = CommonEnv.extend({
  CORRAL_PORT: port.default(8080),
  CORRAL_HOST: host.default("127.0.0.1"),
  CORRAL_API_KEYS: apiKeys,
  CORRAL_API_KEYS_FILE: optionalString,
  CORRAL_METRICS_TOKEN: optionalString.refine((token) => token === undefined || token.length >= 16, {
    message: "expected a token of at least 16 characters",
  }),
  CORRAL_ADMIN_QUEUES_WRITABLE: boolean.default(false),
  CORRAL_HEADERS_TIMEOUT_MS: duration.default(20_000),
  CORRAL_BODY_TIMEOUT_MS: duration.default(60_000),
  CORRAL_BODY_IDLE_TIMEOUT_MS: duration.default(10_000),
  CORRAL_MAX_CONNECTIONS: integer(1, 1_000_000).default(4096),
  CORRAL_ALLOW_OPEN: boolean.default(false),
  CORRAL_ADMIN_KEY: optionalString
    .refine((key) => key === undefined || key.length >= 16, {
      message: "expected a key of at least 16 characters",
    })
    .refine((key) => key === undefined || !isPlaceholderKey(key), { message: PLACEHOLDER_KEY_MESSAGE }),
  CORRAL_BODY_LIMIT: byteSize.default(1024 * 1024),
  CORRAL_CATALOG_RESCAN_MS: duration.default(30_000),
  CORRAL_CATALOG_WATCH: boolean.default(true),
  CORRAL_MODEL_REMOVED_GRACE_MS: duration.default(10_000),
  CORRAL_REQUEST_TIMEOUT_MS: duration.default(10 * 60 * 1000),
  CORRAL_CHECK_PROMPT_LENGTH: boolean.default(true),
  CORRAL_REDIS_COMMAND_TIMEOUT_MS: duration.default(5000),
  CORRAL_CONTEXT_SIZE: integer(1, 16_777_216).default(4096),
  CORRAL_SEQUENCES: integer(1, 1024).default(4),
  CORRAL_MAX_QUEUED_PER_TENANT: integer(1, 100_000_000).default(10_000),
  CORRAL_MAX_QUEUED_BYTES_PER_TENANT: byteSize.default(256 * 1024 * 1024),
  CORRAL_MAX_ACTIVE_BATCHES_PER_TENANT: integer(1, 1_000_000).default(100),
  CORRAL_MAX_STREAMS_PER_TENANT: integer(1, 1_000_000).default(64),
  CORRAL_JOB_ATTEMPTS: integer(1, 100).default(3),
  CORRAL_REDIS_WAIT_REPLICAS: integer(0, 64).default(0),
  CORRAL_REDIS_WAIT_TIMEOUT_MS: duration.default(1000),
  CORRAL_TENANT_SHARES: tenantShares,
  CORRAL_FAIR_CREDIT_TOKENS: integer(0, 1_000_000_000).default(DEFAULT_FAIR_CREDIT_TOKENS),
  CORRAL_TENANT_TOKENS_PER_DAY: tokenBudgets,
  CORRAL_TENANT_AUDIO_SECONDS_PER_DAY: audioBudgets,
  CORRAL_MAX_AUDIO_BYTES: byteSize.default(25 * 1024 * 1024),
  CORRAL_MAX_AUDIO_SECONDS: integer(1, 1_000_000).default(3600),
  CORRAL_AUDIO_TTL: duration.default(3_600_000),
  CORRAL_TENANT_MAX_ACTIVE: tenantNumbers(
    "lab-a:8,*:2",
    (message) =>
      z
        .number({ message })
        .int(`${message} (whole numbers of jobs)`)
        .min(1, `${message} (at least 1 job)`)
        .max(100_000, `${message} (at most 100000 jobs)`),
    TENANT_OR_STAR,
  ),
  CORRAL_DATA_DIR: z.preprocess(
    (value) => (typeof value === "string" && value.trim() === "" ? undefined : value),
    z.string().default("./data"),
  ),
  CORRAL_MAX_FILE_BYTES: byteSize.default(200 * 1024 * 1024),
  CORRAL_TENANT_FILE_BYTES: byteSize.default(10 * 1024 ** 3),
  CORRAL_OUTPUT_FILE_TTL: duration.default(30 * 24 * 3600 * 1000),
  CORRAL_FILE_SWEEP_MS: duration.default(600_000),
  CORRAL_FILE_ORPHAN_AGE: duration.default(3_600_000),
  CORRAL_MAX_FILE_LINES: integer(1, 100_000_000).default(1_000_000),
  CORRAL_BATCH_CHUNK_LINES: integer(1, 100_000).default(200),
  CORRAL_BATCH_LOOP_MS: duration.default(500),
  CORRAL_BATCH_LEASE_MS: duration.default(30_000),
  CORRAL_BATCH_CANCEL_GRACE_MS: duration.default(30_000),
});

export interface ApiKeyEntry {
  tenant: string;
  key: string;
}

/** The scheduler's configuration, parsed from the environment by {@link loadConfig}. */
export interface SchedulerConfig extends CommonConfig {
  /** ioredis `commandTimeout` of the request connection (`CORRAL_REDIS_COMMAND_TIMEOUT_MS`). */
  redisCommandTimeoutMs: number;
  /** Replicas that must hold an acknowledged write (`CORRAL_REDIS_WAIT_REPLICAS`); 0: no WAIT. */
  redisWaitReplicas: number;
  /** Longest WAIT, in ms (`CORRAL_REDIS_WAIT_TIMEOUT_MS`). */
  redisWaitTimeoutMs: number;
  /** Count prompts at submit and refuse those that cannot fit (`CORRAL_CHECK_PROMPT_LENGTH`). */
  checkPromptLength: boolean;
  /** 0: no periodic rescan. */
  catalogRescanMs: number;
  /** Watch the models folder for changes (rescans 500 ms after it goes quiet). */
  catalogWatch: boolean;
  /** How long a model stays out of the catalog before its waiting jobs fail (`model_removed`). */
  modelRemovedGraceMs: number;
  port: number;
  host: string;
  apiKeys: readonly ApiKeyEntry[];
  /** An open API (no keys) may bind a non-loopback address. */
  allowOpen: boolean;
  adminKey: string | null;
  bodyLimitBytes: number;
  /** Longest an OpenAI-style request waits for its jobs. */
  requestTimeoutMs: number;
  /** Longest to receive a request's headers. */
  headersTimeoutMs: number;
  /** Longest to receive a whole request (Node's `server.requestTimeout`). */
  bodyTimeoutMs: number;
  /** Longest a request body may pause; 0: no limit. */
  bodyIdleTimeoutMs: number;
  maxConnections: number;
  /** Bearer token `/metrics` requires; null: open. */
  metricsToken: string | null;
  /** bull-board may change queues (else read-only). */
  adminQueuesWritable: boolean;
  contextSize: number;
  sequences: number;
  maxQueuedPerTenant: number;
  /** Most bytes of queued work per tenant in Redis; 0: no limit. */
  maxQueuedBytesPerTenant: number;
  maxActiveBatchesPerTenant: number;
  /** Most open streams and long polls per tenant in this process. */
  maxStreamsPerTenant: number;
  jobAttempts: number;
  /** Configured fair-claim weights; tenants not named have 1. */
  tenantShares: ReadonlyMap<string, number>;
  /** Credit of a tenant that starts waiting, in weighted tokens (see FairQueue). */
  fairCreditTokens: number;
  /** Tokens per UTC day by tenant (`*`: every tenant not named); empty: no budgets. */
  tokenBudgets: ReadonlyMap<string, number>;
  /** Seconds of audio per UTC day by tenant (`*`: every tenant not named); empty: no budgets. */
  audioBudgets: ReadonlyMap<string, number>;
  /** Largest audio upload, bytes. */
  maxAudioBytes: number;
  /** Longest decoded audio, seconds. */
  maxAudioSeconds: number;
  /** How long a queued transcription's upload stays in Redis, ms: CORRAL_AUDIO_TTL, at least the request timeout + 1 min. */
  audioTtlMs: number;
  /** Most running jobs by tenant (`*`: every tenant not named); empty: no limit. */
  tenantMaxActive: ReadonlyMap<string, number>;
  /** Files live in `<dataDir>/files`. */
  dataDir: string;
  maxFileBytes: number;
  maxFileLines: number;
  /** Most bytes of files per tenant. */
  tenantFileBytes: number;
  /** Batch output files expire this long after they are written; 0: never. */
  outputFileTtlMs: number;
  /** 0: no sweep. */
  fileSweepMs: number;
  fileOrphanAgeMs: number;
  batchChunkLines: number;
  batchLoopMs: number;
  batchLeaseMs: number;
  batchCancelGraceMs: number;
}

/** Tenant names Corral itself uses: the admin key's principal and the open API's caller. */
const RESERVED_TENANTS = new Set(["admin", "default"]);

/** The keys in CORRAL_API_KEYS_FILE: `tenant:key` pairs, one a line or comma-separated, `#` comments. */
function readKeysFile(parsed: { CORRAL_API_KEYS_FILE?: string | undefined; CORRAL_API_KEYS: readonly ApiKeyEntry[] }) {
  const path = parsed.CORRAL_API_KEYS_FILE!;
  if (parsed.CORRAL_API_KEYS.length > 0) {
    throw new ConfigError("CORRAL_API_KEYS_FILE", "set CORRAL_API_KEYS or CORRAL_API_KEYS_FILE, not both");
  }
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(
      "CORRAL_API_KEYS_FILE",
      `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  const pairs = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
    .join(",");
  try {
    return parseEnv(z.object({ CORRAL_API_KEYS: apiKeys }), { CORRAL_API_KEYS: pairs }).CORRAL_API_KEYS;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // The message names the pairs with their keys masked; say which file they came from.
    throw new ConfigError("CORRAL_API_KEYS_FILE", `${path}: ${error.message.replace(/^CORRAL_API_KEYS: /, "")}`);
  }
}

/** Whether `host` is a loopback address (or `localhost`): only this machine can connect. */
function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return bare === "localhost" || bare === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

/** Parses the scheduler's variables from `env`. A bad value throws a ConfigError naming the variable. */
export function loadConfig(env: Env): SchedulerConfig {
  const parsed = parseEnv(SchedulerEnv, env);
  const apiKeyEntries = parsed.CORRAL_API_KEYS_FILE === undefined ? parsed.CORRAL_API_KEYS : readKeysFile(parsed);
  const tenants = new Map<string, string>();
  for (const { tenant, key } of apiKeyEntries) {
    if (RESERVED_TENANTS.has(tenant.toLowerCase())) {
      throw new ConfigError(
        parsed.CORRAL_API_KEYS_FILE === undefined ? "CORRAL_API_KEYS" : "CORRAL_API_KEYS_FILE",
        `the tenant name "${tenant}" is reserved (admin is the admin key's principal, default the open API's caller); pick another name`,
      );
    }
    if (tenants.has(key)) {
      // Same key twice would make the tenant ambiguous.
      throw new ConfigError(
        "CORRAL_API_KEYS",
        `the key of tenant ${tenant} is also the key of tenant ${tenants.get(key)}`,
      );
    }
    tenants.set(key, tenant);
  }
  if (parsed.CORRAL_ADMIN_KEY !== undefined && tenants.has(parsed.CORRAL_ADMIN_KEY)) {
    throw new ConfigError("CORRAL_ADMIN_KEY", "the admin key must differ from every tenant key");
  }
  if (apiKeyEntries.length === 0 && !parsed.CORRAL_ALLOW_OPEN && !isLoopback(parsed.CORRAL_HOST)) {
    throw new ConfigError(
      "CORRAL_API_KEYS",
      `no API keys are set, so the API would be open (every caller is tenant "default" and sees every job and file) ` +
        `on CORRAL_HOST=${parsed.CORRAL_HOST}, which other machines can reach. Set CORRAL_API_KEYS (tenant:key pairs), ` +
        "or bind to 127.0.0.1, or set CORRAL_ALLOW_OPEN=true to serve an open API on purpose",
    );
  }
  return {
    ...commonConfig(parsed),
    redisWaitReplicas: parsed.CORRAL_REDIS_WAIT_REPLICAS,
    redisWaitTimeoutMs: parsed.CORRAL_REDIS_WAIT_TIMEOUT_MS,
    redisCommandTimeoutMs: Math.max(100, parsed.CORRAL_REDIS_COMMAND_TIMEOUT_MS),
    checkPromptLength: parsed.CORRAL_CHECK_PROMPT_LENGTH,
    catalogRescanMs: parsed.CORRAL_CATALOG_RESCAN_MS === 0 ? 0 : Math.max(1000, parsed.CORRAL_CATALOG_RESCAN_MS),
    catalogWatch: parsed.CORRAL_CATALOG_WATCH,
    modelRemovedGraceMs: parsed.CORRAL_MODEL_REMOVED_GRACE_MS,
    port: parsed.CORRAL_PORT,
    host: parsed.CORRAL_HOST,
    apiKeys: apiKeyEntries,
    allowOpen: parsed.CORRAL_ALLOW_OPEN,
    adminKey: parsed.CORRAL_ADMIN_KEY ?? null,
    bodyLimitBytes: parsed.CORRAL_BODY_LIMIT,
    requestTimeoutMs: parsed.CORRAL_REQUEST_TIMEOUT_MS,
    headersTimeoutMs: parsed.CORRAL_HEADERS_TIMEOUT_MS,
    bodyTimeoutMs: parsed.CORRAL_BODY_TIMEOUT_MS,
    bodyIdleTimeoutMs: parsed.CORRAL_BODY_IDLE_TIMEOUT_MS,
    maxConnections: parsed.CORRAL_MAX_CONNECTIONS,
    metricsToken: parsed.CORRAL_METRICS_TOKEN ?? null,
    adminQueuesWritable: parsed.CORRAL_ADMIN_QUEUES_WRITABLE,
    contextSize: parsed.CORRAL_CONTEXT_SIZE,
    sequences: parsed.CORRAL_SEQUENCES,
    maxQueuedPerTenant: parsed.CORRAL_MAX_QUEUED_PER_TENANT,
    maxQueuedBytesPerTenant: parsed.CORRAL_MAX_QUEUED_BYTES_PER_TENANT,
    maxActiveBatchesPerTenant: parsed.CORRAL_MAX_ACTIVE_BATCHES_PER_TENANT,
    maxStreamsPerTenant: parsed.CORRAL_MAX_STREAMS_PER_TENANT,
    jobAttempts: parsed.CORRAL_JOB_ATTEMPTS,
    tenantShares: new Map(parsed.CORRAL_TENANT_SHARES),
    fairCreditTokens: parsed.CORRAL_FAIR_CREDIT_TOKENS,
    tokenBudgets: new Map(parsed.CORRAL_TENANT_TOKENS_PER_DAY),
    audioBudgets: new Map(parsed.CORRAL_TENANT_AUDIO_SECONDS_PER_DAY),
    maxAudioBytes: parsed.CORRAL_MAX_AUDIO_BYTES,
    maxAudioSeconds: parsed.CORRAL_MAX_AUDIO_SECONDS,
    audioTtlMs: Math.max(
      parsed.CORRAL_AUDIO_TTL,
      60_000,
      parsed.CORRAL_REQUEST_TIMEOUT_MS === 0 ? 0 : parsed.CORRAL_REQUEST_TIMEOUT_MS + 60_000,
    ),
    tenantMaxActive: new Map(parsed.CORRAL_TENANT_MAX_ACTIVE),
    dataDir: parsed.CORRAL_DATA_DIR,
    maxFileBytes: parsed.CORRAL_MAX_FILE_BYTES,
    maxFileLines: parsed.CORRAL_MAX_FILE_LINES,
    tenantFileBytes: parsed.CORRAL_TENANT_FILE_BYTES,
    outputFileTtlMs: parsed.CORRAL_OUTPUT_FILE_TTL,
    fileSweepMs: parsed.CORRAL_FILE_SWEEP_MS === 0 ? 0 : Math.max(100, parsed.CORRAL_FILE_SWEEP_MS),
    fileOrphanAgeMs: parsed.CORRAL_FILE_ORPHAN_AGE,
    batchChunkLines: parsed.CORRAL_BATCH_CHUNK_LINES,
    batchLoopMs: Math.max(1, parsed.CORRAL_BATCH_LOOP_MS),
    batchLeaseMs: Math.max(100, parsed.CORRAL_BATCH_LEASE_MS),
    batchCancelGraceMs: parsed.CORRAL_BATCH_CANCEL_GRACE_MS,
  };
}
