import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { RedisKeys, addTokensUsed, utcDay } from "@corral/shared";
import { testRedis, uniquePrefix } from "../support/redis.js";
import { startApi, type ApiHarness } from "./harness.js";

const LAB_KEY = "sk-lab-0123456789abcdef";
const GUEST_KEY = "sk-guest-0123456789abcdef";

describe("GET /v1/quota: the caller's own limits and usage", () => {
  const apis: ApiHarness[] = [];
  after(async () => {
    for (const api of apis) await api.close();
  });

  test("with no quotas configured: the queued limit, no other limits, nothing used", async () => {
    const api = await startApi();
    apis.push(api);
    const response = await api.request("GET", "/v1/quota");
    assert.equal(response.status, 200, response.text);
    const midnight = new Date();
    midnight.setUTCHours(24, 0, 0, 0);
    assert.deepEqual(response.json, {
      object: "quota",
      tenant: "default",
      queued_jobs: { limit: 10_000 },
      active_jobs: { limit: null, running: null },
      daily_tokens: { limit: null, used: 0, day: utcDay(Date.now()), resets_at: midnight.getTime() / 1000 },
      daily_audio_seconds: { limit: null, used: 0, day: utcDay(Date.now()), resets_at: midnight.getTime() / 1000 },
      fair_share: { share: 1, counter: null },
    });
  });

  test("each tenant sees its own limits, running places, tokens today and fair-claim counter; none is 401", async () => {
    // What workers would have written: lab used 1200 tokens today, holds two running
    // places (one expired), and has been served 3000 weighted tokens by fair claim.
    const { url } = await testRedis();
    const prefix = uniquePrefix("quota");
    const keys = new RedisKeys(prefix);
    const redis = new Redis(url, { maxRetriesPerRequest: 1 });
    try {
      const now = Date.now();
      await addTokensUsed(redis, keys, new Map([["lab", 1200]]), { now });
      await redis.zadd(keys.tenantActive("lab"), now + 60_000, "j1", now + 60_000, "j2", now - 1, "dead");
      await redis.hset(keys.fairCounters, "lab", 3000);
    } finally {
      redis.disconnect();
    }
    const api = await startApi({
      redisUrl: url,
      env: {
        CORRAL_PREFIX: prefix,
        CORRAL_API_KEYS: `lab:${LAB_KEY},guest:${GUEST_KEY}`,
        CORRAL_MAX_QUEUED_PER_TENANT: "500",
        CORRAL_TENANT_MAX_ACTIVE: "lab:4,*:1",
        CORRAL_TENANT_TOKENS_PER_DAY: "lab:100000",
        CORRAL_TENANT_SHARES: "lab:3",
      },
    });
    apis.push(api);
    const lab = (await api.request("GET", "/v1/quota", { key: LAB_KEY })).json;
    assert.equal(lab.tenant, "lab");
    assert.deepEqual(lab.queued_jobs, { limit: 500 });
    assert.deepEqual(lab.active_jobs, { limit: 4, running: 2 });
    assert.equal(lab.daily_tokens.limit, 100_000);
    assert.equal(lab.daily_tokens.used, 1200);
    assert.equal(lab.fair_share.share, 3);
    assert.equal(lab.fair_share.counter, 3000);

    const guest = (await api.request("GET", "/v1/quota", { key: GUEST_KEY })).json;
    assert.equal(guest.tenant, "guest");
    assert.deepEqual(guest.active_jobs, { limit: 1, running: 0 });
    assert.deepEqual([guest.daily_tokens.limit, guest.daily_tokens.used], [null, 0]);
    assert.deepEqual(guest.fair_share, { share: 1, counter: null });

    assert.equal((await api.request("GET", "/v1/quota")).status, 401);
  });
});
