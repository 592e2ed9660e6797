import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { RedisKeys } from "../keys.js";
import { FairQueue, type HeldJob } from "./fair-queue.js";
import { jobsAheadOf, readFairPosition } from "./fair-position.js";

describe("readFairPosition against real Redis (held jobs of several tenants)", () => {
  let url: string;
  let redis: Redis;
  let keys: RedisKeys;
  let fair: FairQueue;
  const lane = "lane-m";
  let next = 0;

  before(async () => {
    url = (await testRedis()).url;
    redis = new Redis(url);
  });
  beforeEach(() => {
    keys = new RedisKeys(uniquePrefix("fairpos"));
    fair = new FairQueue(redis, keys, { creditTokens: 100 });
  });
  after(async () => {
    await cleanupPrefix(url, "fairpos");
    redis.disconnect();
  });

  const bull = (type: string) => `${keys.prefix}:${lane}:${type}`;

  /** Adds jobs to the lane's delayed set (as the BullMQ add does) and holds them. */
  async function submit(tenant: string, count: number, extra: Partial<HeldJob> = {}, now = 1000): Promise<HeldJob[]> {
    const jobs: HeldJob[] = Array.from({ length: count }, () => ({
      id: `${tenant}-${++next}`,
      tenant,
      weight: 1,
      priority: 150,
      createdAt: 1_000_000 + next,
      cost: 10,
      ...extra,
    }));
    for (const job of jobs) await redis.zadd(bull("delayed"), 1e15, job.id);
    assert.equal(await fair.hold(lane, jobs, now), count);
    return jobs;
  }

  const positionOf = async (job: HeldJob, now = 5000) =>
    readFairPosition(
      redis,
      keys,
      { id: job.id, tenant: job.tenant, lane, level: job.priority, createdAt: job.createdAt },
      { now },
    );

  /** Every held job's estimated position, then the order releaseFair really gives them, one at a time. */
  async function estimatedAndActual(
    jobs: readonly HeldJob[],
  ): Promise<{ id: string; estimated: number; actual: number }[]> {
    const estimated = new Map<string, number>();
    for (const job of jobs) {
      const position = await positionOf(job);
      assert.ok(position, `${job.id} is held`);
      assert.equal(position.state, "held");
      estimated.set(job.id, position.position);
    }
    const order: string[] = [];
    for (;;) {
      const [released] = await fair.release(lane, 1, 3000);
      if (!released) break;
      order.push(released.id);
    }
    assert.equal(order.length, jobs.length, "every held job is released");
    return jobs.map((job) => ({ id: job.id, estimated: estimated.get(job.id)!, actual: order.indexOf(job.id) + 1 }));
  }

  test("equal tenants that arrive together: positions are the round-robin order releaseFair follows", async () => {
    const jobs = [...(await submit("a", 6)), ...(await submit("b", 4)), ...(await submit("c", 2))];
    const rows = await estimatedAndActual(jobs);
    for (const row of rows) assert.equal(row.estimated, row.actual, `${row.id}: ${JSON.stringify(rows)}`);
    // a's first job is next; c's second comes 6th (a b c a b c).
    assert.equal(rows[0]!.estimated, 1);
    assert.equal(rows.find((r) => r.id === jobs[11]!.id)!.estimated, 6);
  });

  test("counters apart, weights 1:2, costs per tenant and an interactive band: estimates match the release order", async () => {
    // heavy has been served 20 jobs; light arrives lifted to the floor minus its credit.
    await submit("heavy", 20);
    for (let i = 0; i < 20; i++) await fair.release(lane, 1, 2000);
    const jobs = [
      ...(await submit("heavy", 8, { cost: 10 })),
      ...(await submit("light", 6, { cost: 30, weight: 2 })),
      ...(await submit("small", 5, { cost: 5 })),
      ...(await submit("heavy", 2, { cost: 10, priority: 60 })),
      ...(await submit("small", 1, { cost: 5, priority: 90 })),
    ];
    const counters = await fair.counters();
    assert.ok(counters.get("heavy")! > counters.get("light")!, "the tenants' counters differ");
    const rows = await estimatedAndActual(jobs);
    // Each tenant's jobs cost the same here, so the estimate is the release order, job for job.
    for (const row of rows) assert.equal(row.estimated, row.actual, `${row.id}: ${JSON.stringify(rows)}`);
    // The interactive jobs come first, whoever's counter is lowest.
    const interactive = rows
      .slice(-3)
      .map((row) => row.estimated)
      .sort((x, y) => x - y);
    assert.deepEqual(interactive, [1, 2, 3]);
  });

  test("a light tenant's job that overtakes a heavy backlog gets a small position", async () => {
    const heavy = await submit("heavy", 200);
    for (let i = 0; i < 10; i++) await fair.release(lane, 1, 2000);
    const [light] = await submit("light", 1);
    const lightPosition = (await positionOf(light!))!.position;
    const lastHeavy = (await positionOf(heavy.at(-1)!))!.position;
    assert.ok(lightPosition <= 2, `light's job is next or nearly (${lightPosition})`);
    assert.equal(lastHeavy, 191, "heavy's last job comes after the other 189 held and light's");
  });

  test("the start is now + position ÷ the lane's recent completion rate, counted since it started waiting", async () => {
    const now = 100_000;
    // 30 completions and 10 failures over the last 20 s, and 50 older ones outside the window.
    for (let i = 0; i < 30; i++) await redis.zadd(bull("completed"), now - 500 * i - 1, `done-${i}`);
    for (let i = 0; i < 10; i++) await redis.zadd(bull("failed"), now - 2000 * i - 1, `failed-${i}`);
    for (let i = 0; i < 50; i++) await redis.zadd(bull("completed"), now - 70_000 - i, `old-${i}`);
    const jobs = await submit("a", 4, {}, now - 20_000);
    const third = (await readFairPosition(
      redis,
      keys,
      { id: jobs[2]!.id, tenant: "a", lane, level: 150, createdAt: jobs[2]!.createdAt },
      { now },
    ))!;
    assert.equal(third.position, 3);
    // The lane started waiting 20 s ago and 40 finished since: 2 per second.
    assert.equal(third.ratePerSecond, 2);
    assert.equal(third.estimatedStartAt, now + 1500);
  });

  test("a lane that just started waiting counts its rate since then, once a few jobs finished", async () => {
    const now = 100_000;
    // A trickle over the last minute (one every 10 s), then a burst: 10 in the 2 s since the backlog began.
    for (let i = 1; i <= 5; i++) await redis.zadd(bull("completed"), now - 10_000 * i, `trickle-${i}`);
    for (let i = 0; i < 10; i++) await redis.zadd(bull("completed"), now - 150 * i - 1, `burst-${i}`);
    const [job] = await submit("a", 1, {}, now - 2000);
    const position = (await positionOf(job!, now))!;
    assert.equal(position.ratePerSecond, 5);
    assert.equal(position.estimatedStartAt, now + 200);
  });

  test("too few finished since the lane started waiting: the window counts, from its oldest finish", async () => {
    const now = 100_000;
    // Six over the last 30 s (none before: the lane was idle), none since it started waiting.
    for (let i = 0; i < 6; i++) await redis.zadd(bull("completed"), now - 1000 - 5800 * i, `earlier-${i}`);
    const [job] = await submit("a", 1, {}, now - 500);
    const position = (await positionOf(job!, now))!;
    // Six in the 30 s from the oldest (now − 30 s) to now: 0.2 per second, not 6 in 60 s.
    assert.equal(position.ratePerSecond, 0.2);
    assert.equal(position.estimatedStartAt, now + 5000);
  });

  test("jobs created in the same ms (a batch's lines) are found and ranked, past the first page of entries", async () => {
    const jobs = await submit("a", 1200, { createdAt: 7_000_000 });
    const sorted = [...jobs].sort((x, y) => (`${x.cost}|${x.id}` < `${y.cost}|${y.id}` ? -1 : 1));
    for (const index of [0, 499, 500, 1199]) {
      const position = await positionOf(sorted[index]!);
      assert.equal(position?.position, index + 1, `entry ${index}`);
    }
    const [first] = await fair.release(lane, 1, 3000);
    assert.equal(first!.id, sorted[0]!.id, "releaseFair takes them in the same order");
  });

  test("with nothing finished lately there is a position but no start estimate", async () => {
    const [job] = await submit("a", 1);
    const position = (await positionOf(job!))!;
    assert.equal(position.position, 1);
    assert.equal(position.ratePerSecond, null);
    assert.equal(position.estimatedStartAt, null);
  });

  test("a released job counts from the back of the wait list; a job that is neither held nor waiting has none", async () => {
    const jobs = await submit("a", 3);
    await fair.release(lane, 2, 3000);
    assert.deepEqual(await redis.lrange(bull("wait"), 0, -1), [jobs[1]!.id, jobs[0]!.id]);
    assert.deepEqual(
      { ...(await positionOf(jobs[1]!))! },
      { position: 2, ratePerSecond: null, estimatedStartAt: null, state: "released" },
    );
    assert.equal((await positionOf(jobs[0]!))!.position, 1);
    assert.equal((await positionOf(jobs[2]!))!.state, "held");
    assert.equal(await positionOf({ ...jobs[2]!, id: "not-there" }), null);
    assert.equal(await positionOf({ ...jobs[2]!, createdAt: jobs[2]!.createdAt + 1 }), null, "looked up by its entry");
  });
});

describe("jobsAheadOf (weighted VTC)", () => {
  // The asked job's tenant is at 100 with 4 jobs ahead charging 10 each: it is picked at 140.
  const own = { counter: 100, rank: 4, charge: 10 };
  test("a tenant behind is served until it catches up, capped at what it holds", () => {
    // From 50 in steps of 10: 9 picks below 140 (50…130).
    assert.equal(jobsAheadOf(own, { counter: 50, earlier: 0, same: 100, charge: 10, older: false }), 9);
    assert.equal(jobsAheadOf(own, { counter: 50, earlier: 0, same: 3, charge: 10, older: false }), 3);
    // A tie at 140 goes to the older head.
    assert.equal(jobsAheadOf(own, { counter: 50, earlier: 0, same: 100, charge: 10, older: true }), 10);
  });
  test("a tenant ahead gets nothing in the band, but all its earlier-band jobs", () => {
    assert.equal(jobsAheadOf(own, { counter: 500, earlier: 0, same: 100, charge: 10, older: true }), 0);
    assert.equal(jobsAheadOf(own, { counter: 500, earlier: 7, same: 100, charge: 10, older: true }), 7);
  });
  test("a smaller charge (a cheaper job, or a larger weight) gets more picks", () => {
    assert.equal(jobsAheadOf(own, { counter: 100, earlier: 0, same: 100, charge: 5, older: false }), 8);
    assert.equal(jobsAheadOf(own, { counter: 100, earlier: 0, same: 100, charge: 20, older: false }), 2);
  });
});
