import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { WorkerRegistry } from "@corral/scheduler";
import { METRIC, type WorkerState } from "@corral/shared";
import { pino } from "pino";
import { startRedisServer } from "../support/redis.js";
import { errorOf, startApi, storiesJob, type ApiHarness } from "./harness.js";

const workerState = (id: string): WorkerState => ({
  id,
  host: "gpu-box-1",
  slot: "gpu0",
  pid: 4242,
  version: "0.1.0",
  mode: "cpu",
  gpus: [],
  cuda_version: null,
  host_info: null,
  budget_total_bytes: 8e9,
  budget_free_bytes: 6e9,
  loaded_models: [],
  active_jobs: [],
  state: "idle",
  started_at: Date.now() - 1000,
  updated_at: Date.now(),
});

describe("health, models, workers and metrics", () => {
  let api: ApiHarness;
  before(async () => {
    api = await startApi();
  });
  after(async () => {
    await api?.close();
  });

  test("/healthz and /readyz answer 200", async () => {
    const health = await api.request("GET", "/healthz");
    assert.equal(health.status, 200);
    assert.deepEqual(health.json, { status: "ok" });
    const ready = await api.request("GET", "/readyz");
    assert.equal(ready.status, 200);
    assert.equal(ready.json.status, "ok");
  });

  test("every response carries a request id; a sane x-request-id is echoed", async () => {
    const generated = await api.request("GET", "/healthz");
    assert.match(generated.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
    const echoed = await api.request("GET", "/v1/models", { headers: { "x-request-id": "trace-abc.123" } });
    assert.equal(echoed.headers.get("x-request-id"), "trace-abc.123");
    const replaced = await api.request("GET", "/healthz", { headers: { "x-request-id": "bad id\twith spaces" } });
    assert.notEqual(replaced.headers.get("x-request-id"), "bad id\twith spaces");
  });

  test("GET /v1/models lists the catalog in OpenAI's shape", async () => {
    const response = await api.request("GET", "/v1/models");
    assert.equal(response.status, 200);
    assert.equal(response.json.object, "list");
    const ids = response.json.data.map((m: { id: string }) => m.id);
    assert.deepEqual(ids, ["llama-2-tiny-random", "stories260K"]);
    const stories = response.json.data[1];
    assert.equal(stories.object, "model");
    assert.equal(stories.owned_by, "corral");
    assert.ok(Number.isInteger(stories.created) && stories.created < 1e11, "created is in seconds");
    for (const field of [
      "file",
      "parameters",
      "architecture",
      "context_size",
      "sequences",
      "requirement_bytes",
      "estimated_vram_bytes",
      "vram_override_bytes",
      "train_context_size",
      "layers",
    ]) {
      assert.ok(field in stories.corral, `corral.${field}`);
    }
    assert.equal(stories.corral.file, "stories260K.gguf");
    assert.equal(stories.corral.sequences, 4);

    const one = await api.request("GET", "/v1/models/stories260K");
    assert.equal(one.status, 200);
    assert.deepEqual(one.json, stories);
  });

  test("GET /v1/workers lists live heartbeats and drops expired ones", async () => {
    const registry = new WorkerRegistry({ redis: api.redis, keys: api.keys, logger: pino({ level: "silent" }) });
    assert.deepEqual((await api.request("GET", "/v1/workers")).json, { object: "list", data: [] });
    await registry.heartbeat(workerState("gpu-box-1/gpu0"), 30);
    await api.redis.sadd(api.keys.workers, "gone-worker"); // its heartbeat key expired
    const response = await api.request("GET", "/v1/workers");
    assert.equal(response.status, 200);
    assert.deepEqual(
      response.json.data.map((w: WorkerState) => w.id),
      ["gpu-box-1/gpu0"],
    );
    assert.equal(await api.redis.sismember(api.keys.workers, "gone-worker"), 0);
  });

  test("/metrics exposes the scheduler's metrics with their labels", async () => {
    const submitted = await api.request("POST", "/v1/jobs", { body: storiesJob() });
    assert.equal(submitted.status, 202);
    await api.request("GET", `/v1/jobs/${submitted.json.id}`);
    const response = await api.request("GET", "/metrics");
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /text\/plain/);
    const text = response.text;
    const hasLine = (name: string, labels: Record<string, string>) =>
      text
        .split("\n")
        .some(
          (line) =>
            line.startsWith(`${name}{`) &&
            Object.entries(labels).every(([label, value]) => line.includes(`${label}="${value}"`)),
        );
    assert.ok(
      hasLine(METRIC.jobsSubmitted, { model: "stories260K", tenant: "default", source: "native" }),
      "jobs submitted",
    );
    assert.ok(hasLine(METRIC.queueJobs, { model: "stories260K", state: "waiting" }), "queue waiting");
    assert.ok(hasLine(METRIC.queueJobs, { model: "stories260K", state: "active" }), "queue active");
    assert.match(text, /corral_queue_jobs\{model="stories260K",state="waiting"\} [1-9]/);
    assert.ok(
      hasLine(`${METRIC.httpRequestDuration}_bucket`, { method: "POST", route: "/v1/jobs", status: "202" }),
      "http duration by route pattern",
    );
    assert.ok(
      hasLine(`${METRIC.httpRequestDuration}_count`, { method: "GET", route: "/v1/jobs/:id", status: "200" }),
      "route pattern, not the raw URL",
    );
    assert.ok(!text.includes(submitted.json.id), "no job ids in labels");
    assert.match(text, new RegExp(`^${METRIC.workersOnline} \\d+$`, "m"));
    assert.match(text, /^corral_scheduler_process_cpu_user_seconds_total /m);
  });
});

describe("/readyz when Redis goes away", () => {
  test("answers 503 once the Redis server is stopped, and close() still finishes", async () => {
    const server = await startRedisServer();
    const api = await startApi({ redisUrl: server.url });
    try {
      assert.equal((await api.request("GET", "/readyz")).status, 200);
      await server.stop();
      let response = await api.request("GET", "/readyz");
      for (let i = 0; i < 50 && response.status === 200; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        response = await api.request("GET", "/readyz");
      }
      assert.equal(response.status, 503);
      assert.equal(response.json.status, "unavailable");
      assert.equal(typeof response.json.checks.redis, "string");
      // Liveness does not depend on Redis.
      assert.equal((await api.request("GET", "/healthz")).status, 200);
      // Job calls fail with a 5xx JSON error, not a hang or an HTML page.
      const submit = await api.request("POST", "/v1/jobs", { body: storiesJob() });
      assert.ok(submit.status >= 500, String(submit.status));
      errorOf(submit);
    } finally {
      await api.close();
      await server.stop();
    }
  });
});
