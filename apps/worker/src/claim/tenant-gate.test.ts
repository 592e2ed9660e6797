import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { pino } from "pino";
import { RedisKeys } from "@corral/shared";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { TenantGate } from "./tenant-gate.js";

const LANE = "lane-gate-test";

describe("TenantGate on real Redis", () => {
  let url: string;
  let redis: Redis;
  const prefixes: string[] = [];
  const queues: Queue[] = [];
  const gates: TenantGate[] = [];

  before(async () => {
    url = (await testRedis()).url;
    redis = new Redis(url, { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    for (const gate of gates) await gate.close();
    for (const queue of queues) await queue.close();
    for (const prefix of prefixes) await cleanupPrefix(url, prefix);
    redis?.disconnect();
  });

  /** A gate over fresh keys whose clock the test sets, and a lane with `parked` delayed jobs. */
  const setup = async () => {
    const prefix = uniquePrefix("tenant-gate");
    prefixes.push(prefix);
    const keys = new RedisKeys(prefix);
    const clock = { now: Date.now() };
    const gate = new TenantGate({
      redis,
      keys,
      leaseMs: 1000,
      logger: pino({ level: "silent" }),
      now: () => clock.now,
    });
    gates.push(gate);
    const queue = new Queue(LANE, { connection: redis, prefix: keys.prefix });
    queues.push(queue);
    /** A job as a slot leaves it when it parks: in the delayed set, listed as parked. */
    const parkedJob = async (tenant: string, id: string, max: number) => {
      await queue.add("completion", {}, { jobId: id, delay: 600_000 });
      await gate.park(tenant, LANE, id, max);
    };
    const stateOf = (id: string) => queue.getJobState(id);
    return { keys, clock, gate, parkedJob, stateOf };
  };

  test("enter takes places up to the limit; the same job enters again; leave frees its place", async () => {
    const { gate, keys } = await setup();
    assert.equal(await gate.enter("t", "a", 2), true);
    assert.equal(await gate.enter("t", "b", 2), true);
    assert.equal(await gate.enter("t", "c", 2), false, "both places taken");
    assert.equal(await gate.enter("other", "x", 2), true, "tenants are counted apart");
    assert.equal(await gate.enter("t", "a", 2), true, "a rerun of a job holding a place keeps it");
    await gate.leave("t", "a", 2);
    assert.equal(await gate.enter("t", "c", 2), true);
    assert.deepEqual((await redis.zrange(keys.tenantActive("t"), 0, -1)).sort(), ["b", "c"]);
  });

  test("a place not renewed expires with its lease; renew extends it", async () => {
    const { gate, clock } = await setup();
    assert.equal(await gate.enter("t", "a", 1), true);
    clock.now += 600;
    await gate.renew("t", "a");
    clock.now += 600;
    assert.equal(await gate.enter("t", "b", 1), false, "renewed 600 ms ago: still held");
    clock.now += 500;
    assert.equal(await gate.enter("t", "b", 1), true, "the lease ran out: the place is free");
  });

  test("leave promotes the oldest parked job of the tenant back to its lane", async () => {
    const { gate, parkedJob, stateOf, keys } = await setup();
    assert.equal(await gate.enter("t", "running", 1), true);
    await parkedJob("t", "p1", 1);
    await parkedJob("t", "p2", 1);
    assert.equal(await stateOf("p1"), "delayed");
    await gate.leave("t", "running", 1);
    assert.equal(await stateOf("p1"), "waiting", "promoted");
    assert.equal(await stateOf("p2"), "delayed", "one place, one promotion");
    assert.deepEqual(await redis.lrange(keys.tenantParked("t"), 0, -1), [`${LANE}\tp2`]);
  });

  test("a job parked after the place it waited for was freed is promoted at once, not listed", async () => {
    const { parkedJob, stateOf, keys } = await setup();
    // The running job left between this job's refused enter and its park.
    await parkedJob("t", "late", 1);
    assert.equal(await stateOf("late"), "waiting");
    assert.equal(await redis.llen(keys.tenantParked("t")), 0);
  });

  test("a parked job that is gone (cancelled) is replaced by the next one, so the free place is used", async () => {
    const { gate, parkedJob, stateOf } = await setup();
    assert.equal(await gate.enter("t", "r1", 1), true);
    await parkedJob("t", "gone", 1);
    await parkedJob("t", "next", 1);
    await (await queues.at(-1)!.getJob("gone"))!.remove();
    await gate.leave("t", "r1", 1);
    assert.equal(await stateOf("next"), "waiting");
  });

  test("sweep promotes into places freed by expired leases (a dead slot), and forgets tenants with none parked", async () => {
    const { gate, parkedJob, stateOf, clock, keys } = await setup();
    assert.equal(await gate.enter("t", "dead", 1), true);
    await parkedJob("t", "p", 1);
    assert.equal(await gate.sweep(), 0, "the place is still held");
    assert.equal(await stateOf("p"), "delayed");
    clock.now += 1500;
    assert.equal(await gate.sweep(), 1);
    assert.equal(await stateOf("p"), "waiting");
    assert.equal(await redis.hexists(keys.parkedTenants, "t"), 0);
  });

  test("sweep leaves a free place no lease gave back (a leave promoted into it already)", async () => {
    const { gate, stateOf, keys } = await setup();
    assert.equal(await gate.enter("u", "running", 2), true);
    // Parked while both places were taken; one job has left since and promoted another.
    await queues.at(-1)!.add("completion", {}, { jobId: "q", delay: 600_000 });
    await redis.rpush(keys.tenantParked("u"), `${LANE}\tq`);
    await redis.hset(keys.parkedTenants, "u", 2);
    assert.equal(await gate.sweep(), 0);
    assert.equal(await stateOf("q"), "delayed");
  });

  test("sweep handles each tenant with parked jobs on its own keys, in one pass", async () => {
    const { gate, parkedJob, stateOf, clock, keys } = await setup();
    // Tenant a: a dead slot's place expires, two jobs parked, limit 1: one is promoted.
    assert.equal(await gate.enter("a", "dead-a", 1), true);
    await parkedJob("a", "a1", 1);
    await parkedJob("a", "a2", 1);
    // Tenant b: its place is still held (renewed below), so nothing moves.
    assert.equal(await gate.enter("b", "live-b", 1), true);
    await parkedJob("b", "b1", 1);
    clock.now += 1500;
    assert.equal(await gate.enter("b", "live-b", 1), true, "b's place is renewed by a rerun's enter");
    assert.equal(await gate.sweep(), 1);
    assert.equal(await stateOf("a1"), "waiting");
    assert.equal(await stateOf("a2"), "delayed");
    assert.equal(await stateOf("b1"), "delayed");
    assert.deepEqual(await redis.lrange(keys.tenantParked("a"), 0, -1), [`${LANE}\ta2`]);
    assert.deepEqual(await redis.hgetall(keys.parkedTenants), { a: "1", b: "1" }, "both still have parked jobs");
  });
});
