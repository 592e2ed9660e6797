import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startRedisServer, type RedisServer } from "../support/redis.js";
import { errorOf, startApi, storiesJob, type ApiHarness, type ApiResponse } from "./harness.js";

/** The request connection's command timeout in these tests. */
const COMMAND_TIMEOUT_MS = 1000;
/** "Did not hang": well past the command timeout and the reconnect retries, far below a hang. */
const BOUNDED_MS = 15_000;

const chat = { model: "stories260K", messages: [{ role: "user", content: "Hi" }], max_tokens: 8 };

/** Asserts a 503 `redis_unavailable` with Retry-After, answered in bounded time. */
async function assertUnavailable(call: () => Promise<ApiResponse>, what: string): Promise<number> {
  const started = Date.now();
  const response = await call();
  const took = Date.now() - started;
  assert.equal(response.status, 503, `${what}: ${response.status} ${response.text.slice(0, 200)}`);
  const error = errorOf(response);
  assert.equal(error.code, "redis_unavailable", what);
  assert.equal(error.type, "server_error", what);
  assert.equal(error.param, null, what);
  assert.ok(Number(response.headers.get("retry-after")) > 0, `${what}: Retry-After`);
  assert.ok(took < BOUNDED_MS, `${what} answered after ${took} ms`);
  return took;
}

describe("Redis unreachable (the server stopped with SIGSTOP, its data kept)", () => {
  let server: RedisServer;
  let api: ApiHarness;
  before(async () => {
    server = await startRedisServer();
    api = await startApi({
      redisUrl: server.url,
      env: { CORRAL_REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS) },
    });
  });
  after(async () => {
    server?.process.kill("SIGCONT");
    await api?.close();
    await server?.stop();
  });

  test("requests get 503 redis_unavailable with Retry-After in bounded time, /readyz is 503, and all works again after", async (t) => {
    const before = await api.request("POST", "/v1/jobs", { body: storiesJob() });
    assert.equal(before.status, 202);
    const id = before.json.id as string;

    server.process.kill("SIGSTOP");
    try {
      const took = [
        await assertUnavailable(() => api.request("POST", "/v1/jobs", { body: storiesJob() }), "POST /v1/jobs"),
        await assertUnavailable(() => api.request("GET", `/v1/jobs/${id}`), "GET /v1/jobs/:id"),
        await assertUnavailable(() => api.request("POST", "/v1/chat/completions", { body: chat }), "chat completion"),
        await assertUnavailable(
          () => api.request("POST", "/v1/chat/completions", { body: { ...chat, stream: true } }),
          "streaming chat completion",
        ),
      ];
      t.diagnostic(`503s answered after ${took.join(", ")} ms (command timeout ${COMMAND_TIMEOUT_MS} ms)`);
      const ready = await api.request("GET", "/readyz");
      assert.equal(ready.status, 503);
      assert.ok(Number(ready.headers.get("retry-after")) > 0, "/readyz Retry-After");
      assert.equal((await api.request("GET", "/healthz")).status, 200, "liveness does not depend on Redis");
    } finally {
      server.process.kill("SIGCONT");
    }

    let ready = await api.request("GET", "/readyz");
    for (let i = 0; i < 100 && ready.status !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      ready = await api.request("GET", "/readyz");
    }
    assert.equal(ready.status, 200);
    // The job accepted before the outage is still there, and new work is accepted.
    const kept = await api.request("GET", `/v1/jobs/${id}`);
    assert.equal(kept.status, 200);
    assert.equal(kept.json.status, "queued");
    const after = await api.request("POST", "/v1/jobs", { body: storiesJob() });
    assert.equal(after.status, 202, after.text);
  });
});

describe("Redis gone (the server stopped and started again on its port)", () => {
  test("requests get 503 with Retry-After while it is down, and succeed once it is back", async (t) => {
    let server = await startRedisServer();
    const api = await startApi({
      redisUrl: server.url,
      env: { CORRAL_REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS) },
    });
    try {
      assert.equal((await api.request("POST", "/v1/jobs", { body: storiesJob() })).status, 202);
      await server.stop();
      const took = [
        await assertUnavailable(() => api.request("POST", "/v1/jobs", { body: storiesJob() }), "POST /v1/jobs"),
        await assertUnavailable(() => api.request("GET", "/v1/jobs"), "GET /v1/jobs"),
      ];
      t.diagnostic(`503s answered after ${took.join(", ")} ms`);
      assert.equal((await api.request("GET", "/readyz")).status, 503);

      server = await startRedisServer(server.port);
      let ready = await api.request("GET", "/readyz");
      for (let i = 0; i < 100 && ready.status !== 200; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        ready = await api.request("GET", "/readyz");
      }
      assert.equal(ready.status, 200);
      // A Redis without persistence lost the catalog too; the scheduler's own copy still answers.
      const after = await api.request("POST", "/v1/jobs", { body: storiesJob() });
      assert.equal(after.status, 202, after.text);
    } finally {
      await api.close();
      await server.stop();
    }
  });
});
