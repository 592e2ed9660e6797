import { Redis } from "ioredis";
import { startRedisServer, type RedisServer } from "../../test/support/redis.js";

/** Commands the harness itself sends while measuring; never counted against a job. */
const HARNESS_COMMANDS = new Set(["info", "config|resetstat", "config", "flushall", "ping", "client|setname"]);

/** Calls per command, from `INFO commandstats` (`cmdstat_evalsha:calls=12,...` → { evalsha: 12 }). */
export type CommandCounts = Record<string, number>;

/**
 * A dedicated, throwaway `redis-server` for one bench run (no persistence, free port), so
 * `INFO commandstats` holds nothing but the measured traffic after `CONFIG RESETSTAT`.
 */
export class BenchRedis {
  readonly url: string;
  readonly #server: RedisServer;
  readonly #admin: Redis;
  #stopped = false;

  private constructor(server: RedisServer) {
    this.#server = server;
    this.url = server.url;
    this.#admin = new Redis(server.url, { maxRetriesPerRequest: 1, connectionName: "bench-admin" });
  }

  static async start(): Promise<BenchRedis> {
    return new BenchRedis(await startRedisServer());
  }

  /** The redis-server's pid (CPU accounting). */
  get pid(): number | undefined {
    return this.#server.process.pid;
  }

  async version(): Promise<string> {
    const info = await this.#admin.info("server");
    return /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown";
  }

  /** Empties the database between benchmarks. */
  async flush(): Promise<void> {
    await this.#admin.flushall();
  }

  /** CONFIG RESETSTAT: command statistics start from zero. */
  async resetStats(): Promise<void> {
    await this.#admin.config("RESETSTAT");
  }

  /** Calls per command since the last reset, without the harness's own commands. Commands run inside Lua scripts count too. */
  async commandCounts(): Promise<CommandCounts> {
    return parseCommandStats(await this.#admin.info("commandstats"));
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#admin.disconnect();
    await this.#server.stop();
  }
}

export function parseCommandStats(info: string): CommandCounts {
  const counts: CommandCounts = {};
  for (const line of info.split(/\r?\n/)) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (!match) continue;
    const name = match[1]!;
    if (HARNESS_COMMANDS.has(name)) continue;
    counts[name] = Number(match[2]);
  }
  return counts;
}

export function totalCommands(counts: CommandCounts): number {
  return Object.values(counts).reduce((total, n) => total + n, 0);
}

/** Counts divided by `jobs`, largest first, rounded to 0.01. */
export function perJob(counts: CommandCounts, jobs: number): Record<string, number> {
  return Object.fromEntries(
    Object.entries(counts)
      .sort((a, b) => b[1] - a[1])
      .map(([name, n]) => [name, round(n / jobs, 2)]),
  );
}

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;
