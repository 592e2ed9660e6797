import type { Redis } from "ioredis";

/**
 * What Corral needs to know about the Redis it stands on, read from `INFO memory`,
 * `INFO persistence` and (where the server allows CONFIG) `CONFIG GET save`.
 */
export interface RedisFacts {
  /** `noeviction`, `allkeys-lru`, … */
  maxmemoryPolicy: string;
  /** `maxmemory`; 0: no limit. */
  maxmemoryBytes: number;
  usedMemoryBytes: number;
  /** The host's memory as Redis sees it; 0 when it does not say. */
  totalSystemMemoryBytes: number;
  aofEnabled: boolean;
  /** Whether RDB snapshots are configured (`save` is not empty); null when CONFIG is refused (managed Redis). */
  rdbSnapshots: boolean | null;
}

/** Parses `INFO` output (`field:value` lines) into a map. */
export function parseInfo(info: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of info.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0 && !line.startsWith("#")) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

/** Reads {@link RedisFacts} in one round trip (plus a CONFIG GET that may be refused). */
export async function readRedisFacts(redis: Redis): Promise<RedisFacts> {
  const [memory, persistence] = await Promise.all([redis.info("memory"), redis.info("persistence")]);
  const m = parseInfo(memory);
  const p = parseInfo(persistence);
  let rdbSnapshots: boolean | null = null;
  try {
    const reply = (await redis.config("GET", "save")) as string[];
    rdbSnapshots = (reply[1] ?? "").trim() !== "";
  } catch {
    // CONFIG is renamed or refused (managed Redis): persistence is then reported as unknown.
  }
  return {
    maxmemoryPolicy: m.get("maxmemory_policy") ?? "unknown",
    maxmemoryBytes: Number(m.get("maxmemory") ?? 0) || 0,
    usedMemoryBytes: Number(m.get("used_memory") ?? 0) || 0,
    totalSystemMemoryBytes: Number(m.get("total_system_memory") ?? 0) || 0,
    aofEnabled: p.get("aof_enabled") === "1",
    rdbSnapshots,
  };
}

/**
 * Used memory against the limit: `maxmemory` when one is set, otherwise the host's memory
 * (what Redis can grow to before the kernel stops it). 0 when neither is known.
 */
export function memoryUsedRatio(facts: RedisFacts): number {
  const limit = facts.maxmemoryBytes > 0 ? facts.maxmemoryBytes : facts.totalSystemMemoryBytes;
  return limit > 0 ? facts.usedMemoryBytes / limit : 0;
}

/** What a process should do about the Redis it found. */
export interface RedisFindings {
  /** Why the process must not start; null when it may. */
  refuse: string | null;
  /** Problems to log at warn. */
  warnings: string[];
}

export interface CheckRedisFactsOptions {
  /** `CORRAL_REDIS_ALLOW_EVICTION`: start even when Redis may evict keys. */
  allowEviction: boolean;
}

/**
 * The start-up guards. Redis with an eviction policy other than `noeviction` silently drops
 * keys under memory pressure: job records, lane entries and batch counters, so accepted work
 * is lost (measured: `allkeys-lru` lost about 2,800 of 3,000 jobs). That refuses start unless
 * the operator opts in. No persistence (neither AOF nor RDB) loses everything queued when
 * Redis restarts: that is a warning, since tests and `corral up` run that way on purpose.
 */
export function checkRedisFacts(facts: RedisFacts, options: CheckRedisFactsOptions): RedisFindings {
  const warnings: string[] = [];
  let refuse: string | null = null;
  if (facts.maxmemoryPolicy !== "noeviction") {
    const why =
      `Redis's maxmemory-policy is ${facts.maxmemoryPolicy}: under memory pressure it evicts keys, ` +
      "and queued jobs, records and batch counts are lost without an error";
    if (options.allowEviction) warnings.push(`${why} (allowed by CORRAL_REDIS_ALLOW_EVICTION)`);
    else
      refuse =
        `${why}. Set \`maxmemory-policy noeviction\` in redis.conf (or CONFIG SET maxmemory-policy noeviction), ` +
        "or start with CORRAL_REDIS_ALLOW_EVICTION=true to accept the risk";
  }
  if (!facts.aofEnabled && facts.rdbSnapshots === false) {
    warnings.push(
      "Redis persistence is off (no AOF, no RDB snapshots): a Redis restart loses every queued job, record and batch; " +
        "set `appendonly yes` for production",
    );
  }
  return { refuse, warnings };
}

/** {@link guardRedis}'s options. */
export interface GuardRedisOptions extends CheckRedisFactsOptions {
  /**
   * Stop waiting for the read after this long and report Redis unreachable; the connection
   * itself keeps whatever retries it was made with.
   * @defaultValue no limit (the connection's own retries and command timeout decide)
   */
  timeoutMs?: number;
}

/** What {@link guardRedis} found. */
export interface RedisGuardFindings extends RedisFindings {
  /** What was read; null when Redis could not be read. */
  facts: RedisFacts | null;
  /**
   * Why Redis could not be read (its message: the connection's last error when it reported
   * one, which says more than a command's "max retries"; `cause`: the read's own error);
   * null when it was read.
   */
  unreachable: Error | null;
}

/**
 * The start-up check every Corral process runs on a Redis connection: reads its
 * {@link RedisFacts} (connecting first when the connection is lazy and not yet connected)
 * and judges them with {@link checkRedisFacts}. Never throws: a Redis it cannot read comes
 * back as `unreachable`, and each caller decides what that means (the scheduler stops, a
 * worker goes on and lets its slots retry, `corral doctor` warns).
 */
export async function guardRedis(redis: Redis, options: GuardRedisOptions): Promise<RedisGuardFindings> {
  let lastError: Error | null = null;
  const keep = (error: Error) => void (lastError = error);
  redis.on("error", keep);
  let timer: NodeJS.Timeout | undefined;
  try {
    const read = (async () => {
      if (redis.status === "wait") await redis.connect();
      return readRedisFacts(redis);
    })();
    read.catch(() => undefined); // still pending when the timeout wins
    const timeoutMs = options.timeoutMs;
    const facts = await (timeoutMs === undefined
      ? read
      : Promise.race([
          read,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`Redis did not answer within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]));
    return { facts, unreachable: null, ...checkRedisFacts(facts, options) };
  } catch (error) {
    const reason = (lastError as Error | null)?.message ?? (error as Error).message;
    return { facts: null, unreachable: new Error(reason, { cause: error }), refuse: null, warnings: [] };
  } finally {
    clearTimeout(timer);
    redis.off("error", keep);
  }
}
