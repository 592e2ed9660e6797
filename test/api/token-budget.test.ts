import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { RedisKeys, addTokensUsed, laneName } from "@corral/shared";
import { testRedis, uniquePrefix } from "../support/redis.js";
import { errorOf, startApi, storiesJob, type ApiHarness } from "./harness.js";

const OVER_KEY = "sk-over-0123456789abcdef";
const UNDER_KEY = "sk-under-0123456789abcdef";

describe("daily token budgets (CORRAL_TENANT_TOKENS_PER_DAY)", () => {
  let api: ApiHarness;

  before(async () => {
    // Workers have counted 1000 tokens today for tenant "over", whose budget is 1000.
    const { url } = await testRedis();
    const prefix = uniquePrefix("budget");
    const redis = new Redis(url, { maxRetriesPerRequest: 1 });
    try {
      await addTokensUsed(redis, new RedisKeys(prefix), new Map([["over", 1000]]), { now: Date.now() });
    } finally {
      redis.disconnect();
    }
    api = await startApi({
      redisUrl: url,
      env: {
        CORRAL_PREFIX: prefix,
        CORRAL_API_KEYS: `over:${OVER_KEY},under:${UNDER_KEY}`,
        CORRAL_TENANT_TOKENS_PER_DAY: "over:1000,*:1000000",
      },
    });
  });
  after(async () => {
    await api?.close();
  });

  const assertOverBudget = (response: Awaited<ReturnType<ApiHarness["request"]>>) => {
    assert.equal(response.status, 429, response.text);
    const error = errorOf(response);
    assert.equal(error.type, "insufficient_quota");
    assert.equal(error.code, "token_budget_exceeded");
    assert.match(error.message, /Tenant over has used 1000 of its 1000 tokens for \d{4}-\d{2}-\d{2} \(UTC\)/);
    const retryAfter = Number(response.headers.get("retry-after"));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 86_400, `Retry-After ${retryAfter}`);
  };

  test("a tenant at its budget gets 429 insufficient_quota with Retry-After on a job, and nothing is queued", async () => {
    assertOverBudget(await api.request("POST", "/v1/jobs", { key: OVER_KEY, body: storiesJob() }));
    assertOverBudget(await api.request("POST", "/v1/jobs?wait=5", { key: OVER_KEY, body: storiesJob() }));
    const list = await api.request("GET", "/v1/jobs", { key: OVER_KEY });
    assert.equal(list.status, 200);
    assert.deepEqual(list.json.data, []);
    const lane = new Queue(laneName("stories260K"), { connection: api.redis, prefix: api.keys.prefix });
    try {
      const counts = await lane.getJobCounts("waiting", "prioritized", "active");
      assert.deepEqual(counts, { waiting: 0, prioritized: 0, active: 0 }, "no job reached the lane");
    } finally {
      await lane.close();
    }
  });

  test("the OpenAI routes answer the same 429", async () => {
    assertOverBudget(
      await api.request("POST", "/v1/chat/completions", {
        key: OVER_KEY,
        body: { model: "stories260K", messages: [{ role: "user", content: "Hi" }], max_tokens: 4 },
      }),
    );
    assertOverBudget(
      await api.request("POST", "/v1/completions", {
        key: OVER_KEY,
        body: { model: "stories260K", prompt: "Once", max_tokens: 4 },
      }),
    );
  });

  test("a new batch is refused at creation; uploading its file still works", async () => {
    const form = new FormData();
    form.append("purpose", "batch");
    const line = {
      custom_id: "a",
      method: "POST",
      url: "/v1/completions",
      body: { model: "stories260K", prompt: "x" },
    };
    form.append("file", new Blob([`${JSON.stringify(line)}\n`], { type: "application/jsonl" }), "b.jsonl");
    const uploaded = await fetch(`${api.url}/v1/files`, {
      method: "POST",
      headers: { authorization: `Bearer ${OVER_KEY}` },
      body: form,
    });
    const file = (await uploaded.json()) as { id: string };
    assert.equal(uploaded.status, 200, JSON.stringify(file));
    assertOverBudget(
      await api.request("POST", "/v1/batches", {
        key: OVER_KEY,
        body: { input_file_id: file.id, endpoint: "/v1/completions", completion_window: "24h" },
      }),
    );
    const batches = await api.request("GET", "/v1/batches", { key: OVER_KEY });
    assert.deepEqual(batches.json.data, [], "no batch was created");
  });

  test("another tenant, under its budget (`*`), is admitted", async () => {
    const response = await api.request("POST", "/v1/jobs", { key: UNDER_KEY, body: storiesJob() });
    assert.equal(response.status, 202, response.text);
  });

  test("/metrics shows each budgeted tenant's budget and tokens today", async () => {
    const metrics = await api.request("GET", "/metrics");
    assert.match(metrics.text, /^corral_tenant_daily_token_budget\{tenant="over"\} 1000$/m);
    assert.match(metrics.text, /^corral_tenant_daily_tokens\{tenant="over"\} 1000$/m);
    assert.doesNotMatch(metrics.text, /corral_tenant_daily_tokens\{tenant="under"\}/, "under used nothing today");
  });
});
