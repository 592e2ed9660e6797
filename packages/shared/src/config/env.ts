import bytes from "bytes";
import ms from "ms";
import { z } from "zod";
import { ConfigError } from "../errors/corral-error.js";
import { redactVariable } from "../redact.js";
import { REDIS_URL_PATTERN, parseRedisUrl, type RedisTlsFiles } from "../redis/connect.js";

/**
 * Helpers for each app's `loadConfig(env)`. Apps describe their variables with zod and
 * pass a plain object (process.env in `main`, a literal in tests). Nothing here reads
 * `process.env`.
 */
export type Env = Readonly<Record<string, string | undefined>>;

const blankToUndefined = (value: unknown): unknown =>
  typeof value === "string" && value.trim() === "" ? undefined : value;

/** A byte size: `1048576`, `512MiB`, `1.5GB`, `8gb`. */
export const byteSize = z.preprocess(
  (value) => {
    const v = blankToUndefined(value);
    if (typeof v !== "string") return v;
    const trimmed = v.trim().replace(/i(?=b$)/i, "");
    const parsed = /^\d+$/.test(trimmed) ? Number(trimmed) : bytes.parse(trimmed);
    return parsed === null || Number.isNaN(parsed) ? v : parsed;
  },
  z.number({ error: "expected a byte size such as 1048576, 512MB or 1.5GB" }).int().min(0),
);

/** A duration: `30000` (ms), `30s`, `5m`, `1h`. */
export const duration = z.preprocess(
  (value) => {
    const v = blankToUndefined(value);
    if (typeof v !== "string") return v;
    const trimmed = v.trim();
    if (/^\d+$/.test(trimmed)) return Number(trimmed);
    const parsed = ms(trimmed as ms.StringValue);
    return typeof parsed === "number" && !Number.isNaN(parsed) ? parsed : v;
  },
  z.number({ error: "expected a duration such as 30000 (ms), 30s, 5m or 1h" }).int().min(0),
);

export const integer = (min: number, max: number) =>
  z.preprocess(
    (value) => {
      const v = blankToUndefined(value);
      return typeof v === "string" && /^-?\d+$/.test(v.trim()) ? Number(v) : v;
    },
    z
      .number({ error: `expected an integer from ${min} to ${max}` })
      .int()
      .min(min)
      .max(max),
  );

export const port = integer(0, 65535);

export const boolean = z.preprocess(
  (value) => {
    const v = blankToUndefined(value);
    if (typeof v !== "string") return v;
    if (/^(1|true|yes|on)$/i.test(v.trim())) return true;
    if (/^(0|false|no|off)$/i.test(v.trim())) return false;
    return v;
  },
  z.boolean({ error: "expected true or false" }),
);

export const redisUrl = z.preprocess(
  blankToUndefined,
  z
    .string()
    .regex(
      REDIS_URL_PATTERN,
      "expected a Redis URL such as redis://127.0.0.1:6379, redis+sentinel://host:26379,host:26379/mymaster or redis+cluster://host:7000,host:7001",
    )
    .superRefine((url, context) => {
      try {
        parseRedisUrl(url);
      } catch (error) {
        context.addIssue({ code: "custom", message: (error as Error).message });
      }
    }),
);

export const prefix = z.preprocess(
  blankToUndefined,
  z.string().regex(/^\{?[A-Za-z0-9_.-]{1,64}\}?$/, "expected letters, digits, '_', '.' or '-' (at most 64)"),
);

export const logLevel = z.preprocess(
  blankToUndefined,
  z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]),
);

export const optionalString = z.preprocess(blankToUndefined, z.string().optional());

/** `tenant:key,tenant:key` → entries. Tenants are names; keys at least 16 characters. */
/**
 * A `z.preprocess` step for a comma-separated list of `name:value` items (blank items
 * skipped): each item, split at its first colon, goes through `item` (value undefined when
 * there is no colon). A blank variable is undefined; the schema judges the result.
 */
export function colonPairList<T>(item: (name: string, value: string | undefined) => T): (value: unknown) => unknown {
  return (value) => {
    const v = blankToUndefined(value);
    if (typeof v !== "string") return v;
    return v
      .split(",")
      .map((pair) => pair.trim())
      .filter(Boolean)
      .map((pair) => {
        const at = pair.indexOf(":");
        return at < 0 ? item(pair, undefined) : item(pair.slice(0, at), pair.slice(at + 1));
      });
  };
}

/** A per-tenant setting from `tenant:value` pairs: the tenant's own, else `*`'s, else null. */
export function tenantSetting(settings: ReadonlyMap<string, number>, tenant: string): number | null {
  return settings.get(tenant) ?? settings.get("*") ?? null;
}

/** A key that is a sample from the docs, not a secret: `sk-change-me-…`, `replace-me`, `example`, `xxxxxxxx`. */
export function isPlaceholderKey(key: string): boolean {
  return /change[-_ ]?me|replace[-_ ]?me|placeholder|example|your[-_ ]?key|x{8}/i.test(key);
}

/** The message for a placeholder key. */
export const PLACEHOLDER_KEY_MESSAGE =
  "a key looks like a placeholder from the examples; generate a real one (e.g. `openssl rand -hex 32`)";

export const apiKeys = z.preprocess(
  colonPairList((tenant, key) => (key === undefined ? { tenant: "", key: tenant } : { tenant, key })),
  z
    .array(
      z.object({
        tenant: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "expected tenant:key pairs, e.g. lab-a:sk-…,lab-b:sk-…"),
        key: z
          .string()
          .min(16, "each key needs at least 16 characters")
          .refine((key) => !isPlaceholderKey(key), PLACEHOLDER_KEY_MESSAGE),
      }),
    )
    .default([]),
);

/** One documented environment variable. The CLI makes a flag of each (`CORRAL_GPUS` → `--gpus`); docs/configuration.md a row. */
export interface EnvVariableDoc {
  name: string;
  /** The default as it would be written in the environment, or null when there is none (or it is computed). */
  default: string | null;
  description: string;
}

/** The variables every Corral process shares. */
export const CommonEnv = z.object({
  CORRAL_REDIS_URL: redisUrl.default("redis://127.0.0.1:6379"),
  CORRAL_PREFIX: prefix.default("corral"),
  CORRAL_MODELS_DIR: z.preprocess(blankToUndefined, z.string().default("./models")),
  CORRAL_LOG_LEVEL: logLevel.default("info"),
  /** The schedulers' lease on interactive jobs, which workers check (see COMMON_ENV). */
  CORRAL_INTERACTIVE_LEASE_MS: duration.default(10_000),
  /** Start even when Redis may evict keys (see checkRedisFacts). */
  CORRAL_REDIS_ALLOW_EVICTION: boolean.default(false),
  /** TLS files for a `rediss://` URL (see redisConnectionOptions). */
  CORRAL_REDIS_TLS_CA: optionalString,
  CORRAL_REDIS_TLS_CERT: optionalString,
  CORRAL_REDIS_TLS_KEY: optionalString,
});

/**
 * {@link CommonEnv}'s variables that the scheduler and the workers read alike, documented
 * once: each app lists them first in its own list (SCHEDULER_ENV, WORKER_ENV), and
 * docs/configuration.md shows them once, as shared.
 */
export const COMMON_ENV: readonly EnvVariableDoc[] = [
  {
    name: "CORRAL_REDIS_URL",
    default: "redis://127.0.0.1:6379",
    description:
      "Redis holding queues and state. One node: redis://[user:password@]host:6379[/db]; Sentinel: redis+sentinel://[user:password@]host:26379,host:26379/master-name[?sentinelPassword=…&db=N]; Cluster: redis+cluster://[user:password@]host:7000,host:7001. rediss… for TLS.",
  },
  {
    name: "CORRAL_PREFIX",
    default: "corral",
    description: "Key prefix for everything Corral stores in Redis; wrapped in a hash tag ({corral}).",
  },
  {
    name: "CORRAL_REDIS_ALLOW_EVICTION",
    default: "false",
    description:
      "Start even when Redis's maxmemory-policy may evict keys (anything but noeviction), which loses queued jobs under memory pressure. Off: such a Redis is refused at start.",
  },
  {
    name: "CORRAL_REDIS_TLS_CA",
    default: null,
    description:
      "PEM file of the CA that signed Redis's certificate, for a rediss:// URL with a private CA. Unset: the system's CAs.",
  },
  {
    name: "CORRAL_REDIS_TLS_CERT",
    default: null,
    description:
      "PEM client certificate for a Redis that checks clients (tls-auth-clients yes); with CORRAL_REDIS_TLS_KEY.",
  },
  {
    name: "CORRAL_REDIS_TLS_KEY",
    default: null,
    description: "PEM private key of CORRAL_REDIS_TLS_CERT.",
  },
  {
    name: "CORRAL_MODELS_DIR",
    default: "./models",
    description: "Folder of .gguf files (and an optional models.yaml) that make up the model catalog.",
  },
  {
    name: "CORRAL_LOG_LEVEL",
    default: "info",
    description: "pino log level: trace, debug, info, warn, error, fatal or silent.",
  },
  {
    name: "CORRAL_INTERACTIVE_LEASE_MS",
    default: "10s",
    description:
      "Lease a scheduler holds on the jobs of the OpenAI requests it is streaming or waiting on, renewed every third of it. A slot cancels such a job once its lease ran out (its scheduler died), on its 5 s sweep: within this plus 5 s. Set the same value on the scheduler and the workers.",
  },
];

/** The part of each app's configuration that comes from {@link COMMON_ENV}. */
export interface CommonConfig {
  redisUrl: string;
  /** Bare or hash-tagged prefix as configured; RedisKeys adds the hash tag. */
  prefix: string;
  /** Start even when Redis may evict keys (`CORRAL_REDIS_ALLOW_EVICTION`). */
  redisAllowEviction: boolean;
  /** TLS files for a `rediss://` URL. */
  redisTls: RedisTlsFiles;
  modelsDir: string;
  logLevel: z.infer<typeof CommonEnv>["CORRAL_LOG_LEVEL"];
  /** The schedulers' lease on the jobs of open OpenAI requests (`CORRAL_INTERACTIVE_LEASE_MS`), ms; at least 1 s. */
  interactiveLeaseMs: number;
}

/** Maps {@link COMMON_ENV}'s parsed variables (any app's schema that extends CommonEnv) into {@link CommonConfig}. */
export function commonConfig(parsed: z.infer<typeof CommonEnv>): CommonConfig {
  return {
    redisUrl: parsed.CORRAL_REDIS_URL,
    prefix: parsed.CORRAL_PREFIX,
    redisAllowEviction: parsed.CORRAL_REDIS_ALLOW_EVICTION,
    redisTls: {
      ca: parsed.CORRAL_REDIS_TLS_CA ?? null,
      cert: parsed.CORRAL_REDIS_TLS_CERT ?? null,
      key: parsed.CORRAL_REDIS_TLS_KEY ?? null,
    },
    modelsDir: parsed.CORRAL_MODELS_DIR,
    logLevel: parsed.CORRAL_LOG_LEVEL,
    interactiveLeaseMs: Math.max(1000, parsed.CORRAL_INTERACTIVE_LEASE_MS),
  };
}

/**
 * Parses `env` with `schema`. The first bad variable raises a ConfigError naming it and
 * what it expects, e.g. `CORRAL_PORT: expected an integer from 0 to 65535 (got "abc")`.
 */
export function parseEnv<S extends z.ZodType>(schema: S, env: Env): z.infer<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const variable = String(issue.path[0] ?? "environment");
  const got = env[variable];
  // Secrets are never echoed: keys are masked, URLs lose their password.
  const shown = got === undefined ? "" : ` (got ${JSON.stringify(redactVariable(variable, got))})`;
  throw new ConfigError(variable, `${issue.message}${shown}`);
}

/** Turns CLI flags (`--redis-url x`) into variables (`CORRAL_REDIS_URL=x`). */
export const flagToVariable = (flag: string): string =>
  `CORRAL_${flag.replace(/^--/, "").replace(/-/g, "_").toUpperCase()}`;
export const variableToFlag = (variable: string): string =>
  `--${variable
    .replace(/^CORRAL_/, "")
    .replace(/_/g, "-")
    .toLowerCase()}`;
