import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { pino } from "pino";
import { ConfigError } from "@corral/shared";
import { loadConfig as loadWorkerConfig, startWorker } from "@corral/worker";
import { startRedisServer, type RedisServer } from "../support/redis.js";
import { startApi } from "./harness.js";

describe("Redis guards at start", () => {
  let server: RedisServer;
  let admin: Redis;

  before(async () => {
    // Its own server: the tests change its eviction policy.
    server = await startRedisServer();
    admin = new Redis(server.url);
    await admin.config("SET", "maxmemory", "256mb");
  });
  after(async () => {
    admin.disconnect();
    await server.stop();
  });

  test("the scheduler refuses a Redis that evicts keys, naming the policy and the way out", async () => {
    await admin.config("SET", "maxmemory-policy", "allkeys-lru");
    await assert.rejects(startApi({ redisUrl: server.url }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /maxmemory-policy is allkeys-lru/);
      assert.match(error.message, /CORRAL_REDIS_ALLOW_EVICTION=true/);
      return true;
    });
  });

  test("a worker refuses it too, before starting any slot", async () => {
    await admin.config("SET", "maxmemory-policy", "volatile-lru");
    const config = loadWorkerConfig({ CORRAL_REDIS_URL: server.url, CORRAL_CPU: "true", CORRAL_LOG_LEVEL: "silent" });
    const started = startWorker(config, {
      logger: pino({ level: "silent" }),
      discovery: { mode: "cpu", gpus: [], driverVersion: null, cudaVersion: null },
    });
    await assert.rejects(
      started.then(async (worker) => {
        await worker.close();
        return worker;
      }),
      /maxmemory-policy is volatile-lru/,
    );
  });

  test("CORRAL_REDIS_ALLOW_EVICTION=true starts anyway; /metrics reports Redis's memory ratio", async () => {
    await admin.config("SET", "maxmemory-policy", "allkeys-lru");
    const api = await startApi({ redisUrl: server.url, env: { CORRAL_REDIS_ALLOW_EVICTION: "true" } });
    try {
      const metrics = await api.request("GET", "/metrics");
      assert.equal(metrics.status, 200);
      const match = /^corral_redis_memory_used_ratio (\S+)$/m.exec(metrics.text);
      assert.ok(match, "corral_redis_memory_used_ratio is exported");
      const ratio = Number(match[1]);
      const used = Number(/used_memory:(\d+)/.exec(await admin.info("memory"))![1]);
      // Used memory over the 256 MB maxmemory, give or take what changed between the reads.
      assert.ok(ratio > 0 && Math.abs(ratio - used / (256 * 1024 * 1024)) < 0.01, `ratio ${ratio}`);
    } finally {
      await api.close();
    }
  });

  test("noeviction starts with no flag", async () => {
    await admin.config("SET", "maxmemory-policy", "noeviction");
    const api = await startApi({ redisUrl: server.url });
    await api.close();
  });
});
