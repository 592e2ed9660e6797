import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { pino } from "pino";
import { WorkerState } from "@corral/shared";
import { WorkerRegistry } from "@corral/scheduler";
import { API_KEY, STORIES, startStack, type OpenAIStack } from "./harness.js";

const STORY = [{ role: "user" as const, content: "Once upon a time" }];

/** A heartbeat of a worker slot with `budget` bytes in all (no real worker behind it). */
function heartbeat(id: string, mode: "gpu" | "cpu", budget: number): WorkerState {
  const now = Date.now();
  return {
    id,
    host: "fake-host",
    slot: id.split(":")[1] ?? "gpu0",
    pid: 1,
    version: "0.0.0",
    mode,
    gpus: [],
    cuda_version: null,
    host_info: null,
    budget_total_bytes: budget,
    budget_free_bytes: budget,
    loaded_models: [],
    active_jobs: [],
    state: "idle",
    started_at: now,
    updated_at: now,
  };
}

describe("OpenAI errors and request lifecycle, with no worker running", () => {
  let stack: OpenAIStack;
  let client: OpenAI;
  let registry: WorkerRegistry;

  before(async () => {
    stack = await startStack({
      worker: false,
      env: { CORRAL_REQUEST_TIMEOUT_MS: "1500", CORRAL_MAX_QUEUED_PER_TENANT: "3" },
    });
    client = stack.client();
    registry = new WorkerRegistry({ redis: stack.redis, keys: stack.keys, logger: pino({ level: "silent" }) });
  });

  afterEach(async () => {
    for (const id of await stack.redis.smembers(stack.keys.workers)) await stack.redis.del(stack.keys.worker(id));
    await stack.redis.del(stack.keys.workers);
  });

  after(async () => {
    await stack?.close();
  });

  test("a wrong or missing API key is an AuthenticationError (401 invalid_api_key)", async () => {
    await assert.rejects(
      stack.client({ apiKey: "sk-not-a-corral-key-000" }).chat.completions.create({ model: STORIES, messages: STORY }),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.AuthenticationError, String(error));
        assert.equal(error.status, 401);
        assert.equal(error.code, "invalid_api_key");
        return true;
      },
    );
    const missing = await fetch(`${stack.baseURL}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: STORIES, messages: STORY }),
    });
    assert.equal(missing.status, 401);
    assert.deepEqual(((await missing.json()) as { error: { code: string } }).error.code, "invalid_api_key");
  });

  test("503 naming the requirement when workers are online but none could ever fit the model", async () => {
    await registry.heartbeat(heartbeat("small:gpu0", "gpu", 1024), 30);
    await registry.heartbeat(heartbeat("small:gpu1", "gpu", 4096), 30);
    await assert.rejects(client.chat.completions.create({ model: STORIES, messages: STORY }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.InternalServerError, String(error));
      assert.equal(error.status, 503);
      assert.equal(error.code, "unschedulable");
      assert.equal(error.headers?.get("x-should-retry"), "false");
      assert.match(error.message, /needs \d+ bytes .* of VRAM/);
      assert.match(error.message, /small:gpu1, has 4096 bytes/);
      return true;
    });
    assert.equal(await stack.redis.zcard(stack.keys.tenantJobs("lab")), 0, "nothing was queued");
  });

  test("a request waits no longer than CORRAL_REQUEST_TIMEOUT_MS: 504, and its job is cancelled", async () => {
    // No worker at all: the request is accepted and waits in the lane.
    const started = Date.now();
    const response = await fetch(`${stack.baseURL}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ model: STORIES, messages: STORY, max_tokens: 4 }),
    });
    assert.equal(response.status, 504);
    assert.ok(Date.now() - started >= 1400);
    const body = (await response.json()) as { error: { type: string; code: string } };
    assert.equal(body.error.code, "timeout");
    const [id] = await stack.redis.zrange(stack.keys.tenantJobs("lab"), -1, -1);
    const record = await stack.job(id!);
    assert.equal(record.status, "cancelled");
    assert.equal(await stack.redis.zcard(stack.keys.tenantQueued("lab")), 0);

    // The same for a stream that never got its first token.
    const streamed = await fetch(`${stack.baseURL}/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ model: STORIES, prompt: "Once", max_tokens: 4, stream: true }),
    });
    assert.equal(streamed.status, 504);
    const [streamId] = await stack.redis.zrange(stack.keys.tenantJobs("lab"), -1, -1);
    assert.notEqual(streamId, id);
    assert.equal((await stack.job(streamId!)).status, "cancelled");
  });

  test("a client that disconnects while its job waits gets the job cancelled", async () => {
    const controller = new AbortController();
    const known = new Set(await stack.redis.zrange(stack.keys.tenantJobs("lab"), 0, -1));
    const request = client.chat.completions.create(
      { model: STORIES, messages: STORY, max_tokens: 4 },
      { signal: controller.signal },
    );
    const jobId = await waitForNewJob(stack, "lab", known);
    controller.abort();
    await assert.rejects(request, OpenAI.APIUserAbortError);
    const record = await stack.waitForJob(jobId, undefined, 10_000);
    assert.equal(record.status, "cancelled");
  });

  test("429 when the tenant's queue is full; the request's other jobs are withdrawn", async () => {
    // The cap is 3 queued jobs: n: 4 fills it and the fourth submit fails.
    await assert.rejects(
      client.completions.create({ model: STORIES, prompt: "Once", n: 4, max_tokens: 2 }),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.RateLimitError, String(error));
        assert.equal(error.status, 429);
        assert.equal(error.code, "queue_full");
        return true;
      },
    );
    assert.equal(await stack.redis.zcard(stack.keys.tenantQueued("lab")), 0, "the three queued jobs were cancelled");
  });
});

/** The id of the tenant's next job, once it is queued. */
async function waitForNewJob(stack: OpenAIStack, tenant: string, before: ReadonlySet<string>): Promise<string> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const ids = await stack.redis.zrange(stack.keys.tenantJobs(tenant), 0, -1);
    const fresh = ids.find((id) => !before.has(id));
    if (fresh) return fresh;
    if (Date.now() > deadline) throw new Error("no job was queued");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
