import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { RedisKeys } from "../keys.js";
import { JobStatus, queuedJobRecord, type JobRecord, type JobResult } from "../schemas/job-record.js";
import { JobRecords } from "./job-records.js";
import { JOB_TRANSITIONS, JobTransitions, type JobRef, type JobTransitionName } from "./job-transitions.js";

const result: JobResult = {
  text: "hi",
  finish_reason: "stop",
  usage: { prompt_tokens: 1, completion_tokens: 1 },
  timings: { queue_ms: 1, load_ms: 0, ttft_ms: null, generation_ms: 1 },
};
const error = { message: "boom", code: "worker_error" as const };

/** Each move, made with plausible arguments. */
const MOVES: Record<JobTransitionName, (m: JobTransitions, job: JobRef) => Promise<JobRecord | null>> = {
  start: (m, job) => m.start(job, { startedAt: 10, worker: "w1", gpu: "0", attempts: 1 }),
  succeed: (m, job) => m.succeed(job, 20, result),
  fail: (m, job) => m.fail(job, 20, error),
  retry: (m, job) => m.retry(job, error),
  requeue: (m, job) => m.requeue(job, 0),
  cancel: (m, job) => m.cancel(job, 20, { ...result, finish_reason: "cancelled" }),
  cancelQueued: (m, job) => m.cancelQueued(job, 20),
  failEnqueue: (m, job) => m.failEnqueue(job, 20),
  failQueued: (m, job) => m.failQueued(job, 20, { message: "gone", code: "model_removed" }),
  addCancelledResult: (m, job) => m.addCancelledResult(job, { ...result, finish_reason: "cancelled" }),
};

/** The table: which moves each status allows. Written out, not derived from JOB_TRANSITIONS. */
const ALLOWED: Record<JobTransitionName, readonly JobStatus[]> = {
  start: ["queued", "running"],
  succeed: ["queued", "running"],
  fail: ["queued", "running"],
  retry: ["queued", "running"],
  requeue: ["running"],
  cancel: ["queued", "running"],
  cancelQueued: ["queued"],
  failEnqueue: ["queued"],
  failQueued: ["queued"],
  addCancelledResult: ["cancelled"],
};

describe("the job state machine on real Redis", () => {
  let url: string;
  let redis: Redis;
  const prefix = uniquePrefix("transitions");
  const keys = new RedisKeys(prefix);
  let moves: JobTransitions;
  let records: JobRecords;
  let n = 0;

  before(async () => {
    url = (await testRedis()).url;
    redis = new Redis(url);
    records = new JobRecords(redis, keys);
    moves = new JobTransitions(records);
  });
  after(async () => {
    await cleanupPrefix(url, prefix);
    redis.disconnect();
  });

  /** A record in `status`, written as it is. */
  const inStatus = async (status: JobStatus, extra: Partial<JobRecord> = {}): Promise<JobRecord> => {
    const record = {
      ...queuedJobRecord({ id: `t${++n}`, tenant: "t", model: "m", source: "native", priority: 150, created_at: 1 }),
      status,
      ...extra,
    };
    await redis.set(keys.job(record.id), JSON.stringify(record));
    return record;
  };

  test("the table test covers every move", () => {
    assert.deepEqual(Object.keys(ALLOWED).sort(), Object.keys(JOB_TRANSITIONS).sort());
  });

  for (const name of Object.keys(ALLOWED) as JobTransitionName[]) {
    for (const status of JobStatus.options) {
      const allowed = ALLOWED[name].includes(status);
      test(`${name} from ${status} is ${allowed ? "allowed" : "refused"}`, async () => {
        const record = await inStatus(status);
        const moved = await MOVES[name](moves, record);
        const stored = await records.get(record.id);
        if (!allowed) {
          assert.equal(moved, null);
          assert.deepEqual(stored, record, "a refused move changes nothing");
          return;
        }
        const to = JOB_TRANSITIONS[name].to ?? status;
        assert.equal(moved?.status, to);
        assert.deepEqual(stored, moved, "the move is stored");
        const final = to !== status && (to === "succeeded" || to === "failed" || to === "cancelled");
        if (final) assert.ok((await redis.ttl(keys.job(record.id))) > 0, "a final move sets the expiry");
        else assert.equal(await redis.ttl(keys.job(record.id)), -1, "a move that is not final keeps it");
      });
    }
  }

  test("a move of a missing record is refused", async () => {
    for (const name of Object.keys(MOVES) as JobTransitionName[])
      assert.equal(await MOVES[name](moves, { id: "missing" }), null, name);
  });

  test("a batch line's final move finds its batch's keys with or without the batch id", async () => {
    await redis.hset(keys.batchCounts("bx"), "open", 1);
    const known = await inStatus("running", { batch_id: "bx", custom_id: "a" });
    const unknown = await inStatus("running", { batch_id: "bx", custom_id: "b" });
    assert.equal((await moves.succeed(known, 30, result))?.status, "succeeded");
    assert.equal((await moves.fail({ id: unknown.id }, 31, error))?.status, "failed");
    assert.deepEqual(await redis.hgetall(keys.batchCounts("bx")), { open: "1", completed: "1", failed: "1" });
    assert.deepEqual(Object.keys(await redis.hgetall(keys.batchResults("bx"))).sort(), ["a", "b"]);
  });
});
