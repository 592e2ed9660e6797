import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { JobRecords, JobTransitions, LaneIndex, runCommand, type RedisKeys } from "@corral/shared";

export interface SlotRecoveryOptions {
  /** The supervisor's connection. */
  redis: Redis;
  keys: RedisKeys;
  logger: Logger;
}

/** A job put back in its lane. */
export interface RecoveredJob {
  lane: string;
  id: string;
  /** BullMQ's attemptsMade after the recovery (the interrupted run counted). */
  attemptsMade: number;
}

/**
 * Puts back the jobs of a slot process that exited, at once instead of after BullMQ's
 * lock and stall check (30 s + up to 30 s by default). Only the supervisor, which saw the
 * process exit, calls it: the process is dead for sure, so no live slot loses a job.
 *
 * Every lock token of a slot process starts with a prefix unique to that process, which
 * its supervisor chose (`<slot id>:<pid>:<random>:`, `SlotProcess`; a counter follows,
 * `ClaimLoop`), so the jobs a process held are the active jobs whose lock token starts with
 * it. That holds for jobs claimed since its last heartbeat too, and costs the slot nothing
 * while it runs. A
 * recovery reads every lane's active list and those jobs' locks (two round trips), then
 * moves each lane's jobs in one script (`recoverJobs.lua` in `@corral/shared`), which checks each
 * lock's token again and counts one attempt.
 *
 * Before a job goes back, its record goes from `running` back to `queued` (`requeue`, with
 * the interrupted run counted in `attempts`), so a client polling it sees it waiting, not
 * running on a dead slot. That happens while the dead token still locks the job, so no
 * slot can claim it and start it first; only a lock that expires between the read of the
 * locks and the move (the stalled check then moves the job instead) could leave a record
 * that says `queued` for a job already running again, until that run ends.
 */
export class SlotRecovery {
  readonly #o: SlotRecoveryOptions;
  readonly #transitions: JobTransitions;
  readonly #index: LaneIndex;

  constructor(options: SlotRecoveryOptions) {
    this.#o = options;
    this.#transitions = new JobTransitions(new JobRecords(options.redis, options.keys));
    this.#index = new LaneIndex(options.redis, options.keys);
  }

  /** Puts back the jobs whose lock tokens start with `tokenPrefix` (one dead process's). */
  async recover(tokenPrefix: string): Promise<RecoveredJob[]> {
    if (tokenPrefix === "") throw new RangeError("a token prefix is needed");
    const { redis, keys } = this.#o;
    const lanes = await redis.smembers(keys.lanes);
    if (lanes.length === 0) return [];
    const queueKey = (lane: string, suffix: string) => `${keys.prefix}:${lane}:${suffix}`;
    const actives = await pipelined(
      redis,
      lanes.map((lane) => ["lrange", queueKey(lane, "active"), "0", "-1"]),
    );
    const held: { lane: string; id: string }[] = [];
    lanes.forEach((lane, i) => {
      for (const id of (actives[i] as string[] | null) ?? []) held.push({ lane, id });
    });
    if (held.length === 0) return [];
    const tokens = (await redis.mget(held.map(({ lane, id }) => queueKey(lane, `${id}:lock`)))) as (string | null)[];
    const byLane = new Map<string, string[]>();
    held.forEach(({ lane, id }, i) => {
      if (!tokens[i]?.startsWith(tokenPrefix)) return;
      let ids = byLane.get(lane);
      if (!ids) byLane.set(lane, (ids = []));
      ids.push(id);
    });
    await this.#requeueRecords(
      [...byLane].flatMap(([lane, ids]) => ids.map((id) => ({ id, key: queueKey(lane, id) }))),
    );
    const recovered: RecoveredJob[] = [];
    for (const [lane, ids] of byLane) {
      const fixed = ["active", "wait", "stalled", "meta", "prioritized", "marker", "events"].map((suffix) =>
        queueKey(lane, suffix),
      );
      const jobKeys = ids.flatMap((id) => [queueKey(lane, id), queueKey(lane, `${id}:lock`)]);
      const moved = await runCommand(redis, "recoverJobs", [...fixed, ...jobKeys], [tokenPrefix, ...ids]);
      for (let i = 0; i + 1 < moved.length; i += 2)
        recovered.push({ lane, id: String(moved[i]), attemptsMade: Number(moved[i + 1]) });
    }
    // The jobs went straight to the wait list, not through fair claim's hold, which is what
    // gives a lane its clock among the lanes with jobs. Without this a lane whose held jobs
    // had all been released keeps NOTHING_HELD, and slots with another model loaded (or
    // none, as the restarted slot) would not look at it until the next stalled sweep.
    if (recovered.length > 0) await this.#index.sync([...new Set(recovered.map((job) => job.lane))]);
    return recovered;
  }

  /** `running` → `queued` for each job's record, its interrupted run counted in `attempts`. */
  async #requeueRecords(jobs: { id: string; key: string }[]): Promise<void> {
    const made = await pipelined(
      this.#o.redis,
      jobs.map(({ key }) => ["hget", key, "atm"]),
    );
    await Promise.all(
      jobs.map(({ id }, i) =>
        this.#transitions
          .requeue({ id }, Number(made[i] ?? 0) + 1)
          .catch((error: unknown) => this.#o.logger.warn({ err: error, job: id }, "could not requeue the record")),
      ),
    );
  }
}

async function pipelined(redis: Redis, commands: string[][]): Promise<unknown[]> {
  const results = (await redis.pipeline(commands).exec()) ?? [];
  return results.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}
