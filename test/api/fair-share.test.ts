import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import { RedisKeys, chargeUsage, laneName, type JobPayload } from "@corral/shared";
import { testRedis, uniquePrefix } from "../support/redis.js";
import { startApi, storiesJob, type ApiHarness } from "./harness.js";

const HEAVY_KEY = "sk-heavy-0123456789abcdef";
const LIGHT_KEY = "sk-light-0123456789abcdef";

/**
 * A scheduler whose Redis already holds an hour of slot time charged to tenant "heavy"
 * (as workers charge it) and none to "light"; no worker runs, so the lane keeps its order.
 */
async function schedulerWithUsage(env: Record<string, string> = {}): Promise<ApiHarness> {
  const { url } = await testRedis();
  const prefix = uniquePrefix("fairshare");
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    await chargeUsage(redis, new RedisKeys(prefix), new Map([["heavy", 3_600_000]]), {
      now: Date.now(),
      halfLifeMs: 3_600_000,
    });
  } finally {
    redis.disconnect();
  }
  return startApi({
    redisUrl: url,
    env: { CORRAL_PREFIX: prefix, CORRAL_API_KEYS: `heavy:${HEAVY_KEY},light:${LIGHT_KEY}`, ...env },
  });
}

/** The lane's jobs in the order a worker claims them. */
async function claimOrder(api: ApiHarness, count: number): Promise<string[]> {
  const connection = new Redis(api.redisUrl, { maxRetriesPerRequest: null });
  const worker = new Worker<JobPayload>(laneName("stories260K"), null, {
    connection,
    prefix: api.keys.prefix,
    autorun: false,
  });
  try {
    const order: string[] = [];
    for (let i = 0; i < count; i++) order.push((await worker.getNextJob(`t${i}`, { block: false }))!.id!);
    return order;
  } finally {
    await worker.close(true);
    connection.disconnect();
  }
}

describe("fair share: a light tenant's jobs overtake a heavy tenant's backlog", () => {
  const apis: ApiHarness[] = [];
  after(async () => {
    for (const api of apis) await api.close();
  });

  const submitAll = async (api: ApiHarness) => {
    const ids: Record<string, string[]> = { heavy: [], light: [] };
    for (const [tenant, key] of [
      ["heavy", HEAVY_KEY],
      ["heavy", HEAVY_KEY],
      ["heavy", HEAVY_KEY],
      ["light", LIGHT_KEY],
    ] as const) {
      const response = await api.request("POST", "/v1/jobs", { key, body: storiesJob() });
      assert.equal(response.status, 202, response.text);
      // The record keeps the priority the client asked for.
      assert.equal(response.json.priority, 50);
      ids[tenant]!.push(response.json.id);
    }
    return ids;
  };

  test("the light tenant's job, submitted last, is claimed first; the heavy ones keep their order", async () => {
    const api = await schedulerWithUsage();
    apis.push(api);
    const ids = await submitAll(api);
    assert.deepEqual(await claimOrder(api, 4), [...ids.light!, ...ids.heavy!]);
    // Operators see the factors: heavy used everything against a share of 1/2.
    const metrics = await api.request("GET", "/metrics");
    assert.match(metrics.text, /^corral_tenant_fair_share_factor\{tenant="heavy"\} 0\.25$/m);
    assert.match(metrics.text, /^corral_tenant_fair_share_factor\{tenant="light"\} 1$/m);
  });

  test("a client's own priority still counts: an urgent heavy job goes before a light job of low priority", async () => {
    const api = await schedulerWithUsage();
    apis.push(api);
    const urgent = await api.request("POST", "/v1/jobs", { key: HEAVY_KEY, body: storiesJob({ priority: 1 }) });
    const light = await api.request("POST", "/v1/jobs", { key: LIGHT_KEY, body: storiesJob({ priority: 80 }) });
    const heavy = await api.request("POST", "/v1/jobs", { key: HEAVY_KEY, body: storiesJob({ priority: 50 }) });
    // heavy used everything against a share of 1/2: F = 1/4, pushed back 38 levels (1 → 39,
    // 50 → 88); light used nothing: 80.
    assert.deepEqual(await claimOrder(api, 3), [urgent.json.id, light.json.id, heavy.json.id]);
  });

  test("CORRAL_FAIR_SHARE_WEIGHT=0: first come, first served", async () => {
    const api = await schedulerWithUsage({ CORRAL_FAIR_SHARE_WEIGHT: "0" });
    apis.push(api);
    const ids = await submitAll(api);
    assert.deepEqual(await claimOrder(api, 4), [...ids.heavy!, ...ids.light!]);
  });
});
