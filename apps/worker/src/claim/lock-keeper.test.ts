import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { pino, type Logger } from "pino";
import { RedisKeys } from "@corral/shared";
import { startMonitor, startRedisServer, uniquePrefix, type RedisServer } from "../../../../test/support/redis.js";
import { LaneWorkers } from "./lane-workers.js";
import { LockKeeper } from "./lock-keeper.js";
import { TenantGate } from "./tenant-gate.js";

const LANE = "lane-keeper-test";
const OTHER_LANE = "lane-keeper-other";
const LOCK_MS = 30_000;
const LEASE_MS = 60_000;

/** A logger whose warnings the test reads back. */
function capturedLogger(): { logger: Logger; warnings: () => string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const logger = pino({ level: "warn" }, stream);
  return { logger, warnings: () => lines.map((line) => (JSON.parse(line) as { msg: string }).msg) };
}

describe("LockKeeper on real Redis", () => {
  let url: string;
  let redis: Redis;

  const closers: (() => Promise<unknown>)[] = [];

  let server: RedisServer;

  before(async () => {
    // A Redis of its own: the renewals are counted with MONITOR, which on the shared Redis
    // would also see every other test file running at the same time (and ioredis's
    // MONITOR can choke on that much traffic).
    server = await startRedisServer();
    url = server.url;
    redis = new Redis(url, { maxRetriesPerRequest: null });
  });
  after(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    redis?.disconnect();
    await server?.stop();
  });

  /**
   * Fresh keys, `count` jobs on each lane claimed by this slot's lane workers (locked for
   * LOCK_MS), a tenant gate and a keeper that renews only when told to.
   */
  const setup = async (jobs: Record<string, number>) => {
    const prefix = uniquePrefix("lock-keeper");

    const keys = new RedisKeys(prefix);
    const { logger, warnings } = capturedLogger();
    const workers = new LaneWorkers({
      connection: redis,
      keys,
      stalledIntervalMs: 30_000,
      lockDurationMs: LOCK_MS,
      logger,
    });
    closers.push(() => workers.close());
    const gate = new TenantGate({ redis, keys, leaseMs: LEASE_MS, logger });
    closers.push(() => gate.close());
    const keeper = new LockKeeper({ locks: workers, places: gate, lockDurationMs: LOCK_MS, logger });
    closers.push(() => keeper.close());
    const claimed: { id: string; lane: string; token: string }[] = [];
    for (const [lane, count] of Object.entries(jobs)) {
      const queue = new Queue(lane, { connection: redis, prefix: keys.prefix });
      closers.push(() => queue.close());
      for (let i = 0; i < count; i++) await queue.add("completion", {}, { jobId: `${lane}-${i}` });
      for (let i = 0; i < count; i++) {
        const token = `slot:${lane}:${i}`;
        const job = await workers.next(lane, token);
        assert.ok(job?.id, "claimed");
        claimed.push({ id: job.id, lane, token });
      }
    }
    const lockKey = (lane: string, id: string) => `${keys.prefix}:${lane}:${id}:lock`;
    /** Shortens every lock to 1 s, so a renewal shows. */
    const shortenLocks = async () => {
      for (const job of claimed) await redis.pexpire(lockKey(job.lane, job.id), 1000);
    };
    const lockTtl = (job: { lane: string; id: string }) => redis.pttl(lockKey(job.lane, job.id));
    return { prefix, keys, workers, gate, keeper, claimed, lockKey, shortenLocks, lockTtl, logger, warnings };
  };

  /** Counts, with MONITOR, the commands `run` sends that renew locks of `prefix`'s lanes or its tenants' places. */
  const countRenewals = async (prefix: string, run: () => Promise<unknown>) => {
    const { client, monitor } = await startMonitor(url);
    const seen = { lockCalls: 0, placeCalls: 0, other: [] as string[] };
    monitor.on("monitor", (_time: string, args: string[], source: string) => {
      if (source === "lua") return; // a command a script ran
      const command = args[0]?.toLowerCase();
      const script = command === "evalsha" || command === "eval"; // eval: the first call, before the script is cached
      if (script && args.some((arg) => arg.startsWith(`${prefix}:`) && arg.endsWith(":stalled"))) seen.lockCalls += 1;
      else if (command === "zadd" && args[1]?.startsWith(`${prefix}:tenant:`)) seen.placeCalls += 1;
      else if (args.some((arg) => arg.startsWith(`${prefix}:`))) seen.other.push(args.join(" ").slice(0, 200));
    });
    try {
      const result = await run();
      // MONITOR delivers asynchronously: let the last commands arrive.
      await new Promise((resolve) => setTimeout(resolve, 300));
      return { ...seen, result };
    } finally {
      monitor.disconnect();
      client.disconnect();
    }
  };

  test("several jobs held: one call per lane renews every lock, one ZADD per tenant every place", async () => {
    const s = await setup({ [LANE]: 3, [OTHER_LANE]: 1 });
    const held = s.claimed.map((job) => s.keeper.hold({ ...job, log: s.logger }));
    // Places: two jobs of tenant t1, one of t2.
    const tenants = ["t1", "t1", "t2"];
    for (const [i, tenant] of tenants.entries()) {
      const job = s.claimed[i]!;
      assert.equal(await s.gate.enter(tenant, job.id, 5), true);
      held[i]!.holdPlace(tenant, job.id);
    }
    await s.shortenLocks();
    const before = Date.now();
    const seen = await countRenewals(s.keys.prefix, () => s.keeper.renew());
    assert.deepEqual(seen.result, { jobs: 4, places: 3, lost: [] });
    assert.equal(seen.lockCalls, 2, "one lock call for each of the two lanes");
    assert.equal(seen.placeCalls, 2, "one ZADD for each of the two tenants");
    assert.deepEqual(seen.other, [], "nothing else");
    for (const job of s.claimed) assert.ok((await s.lockTtl(job)) > LOCK_MS - 5000, `${job.id}'s lock renewed`);
    for (const [i, tenant] of tenants.entries()) {
      const score = Number(await redis.zscore(s.keys.tenantActive(tenant), s.claimed[i]!.id));
      assert.ok(score >= before + LEASE_MS, `${s.claimed[i]!.id}'s place renewed`);
    }
    assert.deepEqual(s.warnings(), []);
  });

  test("a released job (and a dropped place) is no longer renewed; with nothing held a renewal sends nothing", async () => {
    const s = await setup({ [LANE]: 2 });
    const [first, second] = s.claimed;
    const firstLock = s.keeper.hold({ ...first!, log: s.logger });
    const secondLock = s.keeper.hold({ ...second!, log: s.logger });
    assert.equal(await s.gate.enter("t", second!.id, 5), true);
    secondLock.holdPlace("t", second!.id);
    const placedAt = Number(await redis.zscore(s.keys.tenantActive("t"), second!.id));
    firstLock.release();
    firstLock.release(); // idempotent
    secondLock.dropPlace();
    await s.shortenLocks();
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual(await s.keeper.renew(), { jobs: 1, places: 0, lost: [] });
    assert.ok((await s.lockTtl(first!)) <= 1000, "the released job's lock is left to expire");
    assert.ok((await s.lockTtl(second!)) > LOCK_MS - 5000, "the held one is renewed");
    assert.equal(
      Number(await redis.zscore(s.keys.tenantActive("t"), second!.id)),
      placedAt,
      "the dropped place is not",
    );

    secondLock.release();
    assert.equal(s.keeper.size, 0);
    const seen = await countRenewals(s.keys.prefix, () => s.keeper.renew());
    assert.deepEqual(seen.result, { jobs: 0, places: 0, lost: [] });
    assert.equal(seen.lockCalls + seen.placeCalls + seen.other.length, 0, "no command");
  });

  test("a lost lock is reported at every renewal and logged once; the other jobs are renewed", async () => {
    const s = await setup({ [LANE]: 3 });
    for (const job of s.claimed) s.keeper.hold({ ...job, log: s.logger.child({ job: job.id }) });
    const [lost, gone, kept] = s.claimed;
    // Another worker took the first job (its lock now holds another token); the second's lock expired.
    await redis.set(s.lockKey(lost!.lane, lost!.id), "someone-else", "PX", LOCK_MS);
    await redis.del(s.lockKey(gone!.lane, gone!.id));
    const first = await s.keeper.renew();
    assert.deepEqual(first.lost.sort(), [lost!.id, gone!.id].sort());
    assert.equal(first.jobs, 3);
    assert.equal(await redis.get(s.lockKey(lost!.lane, lost!.id)), "someone-else", "the other worker's lock stands");
    assert.ok((await s.lockTtl(kept!)) > 0, "the third is renewed");
    const second = await s.keeper.renew();
    assert.deepEqual(second.lost.sort(), [lost!.id, gone!.id].sort(), "still reported");
    const warnings = s.warnings().filter((msg) => msg.startsWith("lost the job's lock"));
    assert.equal(warnings.length, 2, "one warning per lost job, not per renewal");
  });

  test("a lost lock calls the job's onLost once, so the slot stops it; a kept or released job's is never called", async () => {
    const s = await setup({ [LANE]: 3 });
    const calls: string[] = [];
    const held = s.claimed.map((job) =>
      s.keeper.hold({ ...job, log: s.logger.child({ job: job.id }), onLost: () => calls.push(job.id) }),
    );
    const [lost, kept, released] = s.claimed;
    await redis.set(s.lockKey(lost!.lane, lost!.id), "someone-else", "PX", LOCK_MS);
    // Finished meanwhile: its lock is gone, and so is the job from the keeper.
    await redis.del(s.lockKey(released!.lane, released!.id));
    held[2]!.release();
    await s.keeper.renew();
    await s.keeper.renew();
    assert.deepEqual(calls, [lost!.id]);
    assert.ok((await s.lockTtl(kept!)) > 0);
  });

  test("started, it renews every renewEveryMs on its own, and close stops it", async () => {
    const s = await setup({ [LANE]: 1 });
    const keeper = new LockKeeper({
      locks: s.workers,
      places: s.gate,
      lockDurationMs: LOCK_MS,
      renewEveryMs: 100,
      logger: s.logger,
    });
    closers.push(() => keeper.close());
    keeper.hold({ ...s.claimed[0]!, log: s.logger });
    await s.shortenLocks();
    keeper.start();
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.ok((await s.lockTtl(s.claimed[0]!)) > LOCK_MS - 5000, "renewed by the timer");
    await keeper.close();
    await keeper.close(); // idempotent
    await s.shortenLocks();
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok((await s.lockTtl(s.claimed[0]!)) <= 1000, "no renewal after close");
  });

  test("the renewal period must be shorter than the lock", () => {
    const { logger } = capturedLogger();
    const noop = { extendLocks: async () => [], renewPlaces: async () => {} };
    assert.throws(
      () => new LockKeeper({ locks: noop, places: noop, lockDurationMs: 1000, renewEveryMs: 1000, logger }),
      RangeError,
    );
  });
});
