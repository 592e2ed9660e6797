import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { startRedisServer, type RedisServer } from "../../../../test/support/redis.js";
import {
  checkRedisFacts,
  guardRedis,
  memoryUsedRatio,
  parseInfo,
  readRedisFacts,
  type RedisFacts,
} from "./redis-facts.js";

const facts = (over: Partial<RedisFacts> = {}): RedisFacts => ({
  maxmemoryPolicy: "noeviction",
  maxmemoryBytes: 0,
  usedMemoryBytes: 1_000_000,
  totalSystemMemoryBytes: 8_000_000,
  aofEnabled: true,
  rdbSnapshots: true,
  ...over,
});

describe("Redis start-up guards", () => {
  test("noeviction with AOF passes with no warning", () => {
    assert.deepEqual(checkRedisFacts(facts(), { allowEviction: false }), { refuse: null, warnings: [] });
  });

  test("an evicting policy refuses start and says how to fix it", () => {
    const { refuse } = checkRedisFacts(facts({ maxmemoryPolicy: "allkeys-lru" }), { allowEviction: false });
    assert.match(refuse ?? "", /allkeys-lru/);
    assert.match(refuse ?? "", /maxmemory-policy noeviction/);
    assert.match(refuse ?? "", /CORRAL_REDIS_ALLOW_EVICTION=true/);
  });

  test("CORRAL_REDIS_ALLOW_EVICTION turns the refusal into a warning", () => {
    const found = checkRedisFacts(facts({ maxmemoryPolicy: "volatile-lru" }), { allowEviction: true });
    assert.equal(found.refuse, null);
    assert.equal(found.warnings.length, 1);
    assert.match(found.warnings[0]!, /volatile-lru/);
  });

  test("no AOF and no RDB warns; unknown RDB (CONFIG refused) with no AOF does not guess", () => {
    const off = checkRedisFacts(facts({ aofEnabled: false, rdbSnapshots: false }), { allowEviction: false });
    assert.equal(off.refuse, null);
    assert.match(off.warnings[0] ?? "", /persistence is off/);
    const rdbOnly = checkRedisFacts(facts({ aofEnabled: false, rdbSnapshots: true }), { allowEviction: false });
    assert.deepEqual(rdbOnly.warnings, []);
    const unknown = checkRedisFacts(facts({ aofEnabled: false, rdbSnapshots: null }), { allowEviction: false });
    assert.deepEqual(unknown.warnings, []);
  });

  test("memory ratio is against maxmemory when set, else the host's memory", () => {
    assert.equal(memoryUsedRatio(facts({ maxmemoryBytes: 4_000_000 })), 0.25);
    assert.equal(memoryUsedRatio(facts()), 0.125);
    assert.equal(memoryUsedRatio(facts({ totalSystemMemoryBytes: 0 })), 0);
  });

  test("parseInfo skips section headers", () => {
    const info = parseInfo("# Memory\r\nused_memory:10\r\nmaxmemory_policy:noeviction\r\n");
    assert.equal(info.get("used_memory"), "10");
    assert.equal(info.get("maxmemory_policy"), "noeviction");
    assert.equal(info.has("# Memory"), false);
  });
});

describe("readRedisFacts against a real redis-server", () => {
  let server: RedisServer;
  let redis: Redis;

  before(async () => {
    // Its own server: the test changes its configuration.
    server = await startRedisServer();
    redis = new Redis(server.url);
  });
  after(async () => {
    redis.disconnect();
    await server.stop();
  });

  // AOF is not switched on here: the server would write into the working folder, and with
  // AOF a SIGTERM can wait on its rewrite. The AOF flag is read from the same INFO reply.
  test("reads the policy, the limit, used memory and persistence as configured", async () => {
    // startRedisServer runs with --save "" --appendonly no.
    let read = await readRedisFacts(redis);
    assert.equal(read.maxmemoryPolicy, "noeviction");
    assert.equal(read.aofEnabled, false);
    assert.equal(read.rdbSnapshots, false);
    assert.ok(read.usedMemoryBytes > 0);
    assert.match(checkRedisFacts(read, { allowEviction: false }).warnings[0] ?? "", /persistence is off/);

    await redis.config("SET", "maxmemory-policy", "allkeys-lru");
    await redis.config("SET", "maxmemory", "64mb");
    read = await readRedisFacts(redis);
    assert.equal(read.maxmemoryPolicy, "allkeys-lru");
    assert.equal(read.maxmemoryBytes, 64 * 1024 * 1024);
    assert.ok(memoryUsedRatio(read) > 0 && memoryUsedRatio(read) < 1);
    assert.notEqual(checkRedisFacts(read, { allowEviction: false }).refuse, null);
  });

  test("guardRedis connects a lazy connection, reads the facts and judges them", async () => {
    await redis.config("SET", "maxmemory-policy", "volatile-lru");
    const lazy = new Redis(server.url, { lazyConnect: true });
    try {
      const refused = await guardRedis(lazy, { allowEviction: false });
      assert.equal(refused.unreachable, null);
      assert.equal(refused.facts?.maxmemoryPolicy, "volatile-lru");
      assert.match(refused.refuse ?? "", /maxmemory-policy is volatile-lru/);
      const allowed = await guardRedis(lazy, { allowEviction: true });
      assert.equal(allowed.refuse, null);
      assert.match(allowed.warnings.join("\n"), /allowed by CORRAL_REDIS_ALLOW_EVICTION/);
    } finally {
      lazy.disconnect();
      await redis.config("SET", "maxmemory-policy", "noeviction");
    }
  });
});

describe("guardRedis on a Redis that does not answer", () => {
  test("reports the connection's own error, not the command's", async () => {
    const redis = new Redis("redis://127.0.0.1:1", {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    redis.on("error", () => undefined);
    try {
      const found = await guardRedis(redis, { allowEviction: false });
      assert.equal(found.facts, null);
      assert.equal(found.refuse, null);
      assert.match(found.unreachable?.message ?? "", /ECONNREFUSED/);
    } finally {
      redis.disconnect();
    }
  });

  test("gives up after timeoutMs while the connection keeps retrying", async () => {
    const redis = new Redis("redis://127.0.0.1:1", { retryStrategy: () => 200 });
    redis.on("error", () => undefined);
    try {
      const started = Date.now();
      const found = await guardRedis(redis, { allowEviction: false, timeoutMs: 300 });
      assert.equal(found.facts, null);
      assert.match(found.unreachable?.message ?? "", /ECONNREFUSED/);
      assert.ok(Date.now() - started < 2000, "its 20 retries per command would take 4 s");
      assert.notEqual(redis.status, "end", "the connection is left to its own retries");
    } finally {
      redis.disconnect();
    }
  });
});
