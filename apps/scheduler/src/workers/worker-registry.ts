import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { WorkerState, type RedisKeys } from "@corral/shared";

export interface WorkerRegistryOptions {
  redis: Redis;
  keys: RedisKeys;
  logger: Logger;
}

/**
 * The scheduler's view of worker heartbeats. Each worker slot writes its WorkerState as
 * JSON under `keys.worker(id)` with a TTL and adds its id to `keys.workers`; ids whose
 * key has expired are dropped from the set here, lazily.
 */
/** The tenant of a job record's JSON, or null when it cannot be read. */
function jobTenant(raw: string): string | null {
  try {
    const tenant: unknown = (JSON.parse(raw) as { tenant?: unknown }).tenant;
    return typeof tenant === "string" ? tenant : null;
  } catch {
    return null;
  }
}

export class WorkerRegistry {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #logger: Logger;

  constructor(options: WorkerRegistryOptions) {
    this.#redis = options.redis;
    this.#keys = options.keys;
    this.#logger = options.logger;
  }

  /**
   * What `viewer` may see of the live workers: the admin sees everything; a tenant sees
   * only its own jobs in `active_jobs`, and no host name, pid or host details.
   */
  async listFor(viewer: { tenant: string; isAdmin: boolean }): Promise<WorkerState[]> {
    const workers = await this.list();
    if (viewer.isAdmin) return workers;
    const ids = [...new Set(workers.flatMap((w) => w.active_jobs))];
    const own = new Set<string>();
    if (ids.length > 0) {
      const raws = await this.#redis.mget(ids.map((id) => this.#keys.job(id)));
      for (const [i, raw] of raws.entries()) {
        if (raw !== null && jobTenant(raw) === viewer.tenant) own.add(ids[i]!);
      }
    }
    return workers.map((w) => ({
      ...w,
      host: "",
      pid: 0,
      host_info: null,
      active_jobs: w.active_jobs.filter((id) => own.has(id)),
    }));
  }

  /** Live workers, sorted by id. */
  async list(): Promise<WorkerState[]> {
    const ids = (await this.#redis.smembers(this.#keys.workers)).sort();
    if (ids.length === 0) return [];
    const raws = await this.#redis.mget(ids.map((id) => this.#keys.worker(id)));
    const live: WorkerState[] = [];
    const expired: string[] = [];
    for (const [i, raw] of raws.entries()) {
      const id = ids[i]!;
      if (raw === null) {
        expired.push(id);
        continue;
      }
      let parsed: ReturnType<typeof WorkerState.safeParse>;
      try {
        parsed = WorkerState.safeParse(JSON.parse(raw));
      } catch (error) {
        this.#logger.warn({ err: error, worker: id }, "worker heartbeat is not JSON; skipped");
        continue;
      }
      if (parsed.success) live.push(parsed.data);
      else
        this.#logger.warn(
          { worker: id, issue: parsed.error.issues[0] },
          "worker heartbeat does not match WorkerState; skipped",
        );
    }
    if (expired.length) await this.#redis.srem(this.#keys.workers, ...expired);
    return live;
  }

  /** Writes a heartbeat (what worker slots do every few seconds); for tools and tests. */
  async heartbeat(state: WorkerState, ttlSeconds: number): Promise<void> {
    const value = JSON.stringify(WorkerState.parse(state));
    await this.#redis
      .multi()
      .set(this.#keys.worker(state.id), value, "EX", ttlSeconds)
      .sadd(this.#keys.workers, state.id)
      .exec();
  }
}
