import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { pino } from "pino";
import type { WorkerState } from "@corral/shared";
import { WorkerRegistry } from "@corral/scheduler";
import { API_KEY, OTHER_KEY, STORIES, startBatchStack, type BatchStack } from "../batch/support/harness.js";

const ADMIN_KEY = "sk-corral-admin-test-0001";
const METRICS_TOKEN = "metrics-token-0123456789";

/** A request body (JSON text: too deep for JSON.stringify) whose schema's `examples` annotation nests `depth` levels. */
const deepAnnotationBody = (depth: number, request: Record<string, unknown>): string => {
  const schema = `{"type":"object","properties":{"x":{"type":"string"}},"examples":[${'{"a":'.repeat(depth)}"leaf"${"}".repeat(depth)}]}`;
  const format = `{"type":"json_schema","json_schema":{"name":"deep","schema":${schema}}}`;
  return `${JSON.stringify(request).slice(0, -1)},"response_format":${format}}`;
};

const heartbeat = (id: string, activeJobs: string[]): WorkerState => ({
  id,
  host: "gpu-box-secret-hostname",
  slot: "gpu0",
  pid: 4242,
  version: "0.1.0",
  mode: "cpu",
  gpus: [],
  cuda_version: null,
  host_info: {
    hostname: "gpu-box-secret-hostname",
    cpu_model: "x",
    cpu_cores: 4,
    memory_total_bytes: 1,
    memory_free_bytes: 1,
    os: "linux",
  },
  budget_total_bytes: 8e9,
  budget_free_bytes: 6e9,
  loaded_models: [],
  active_jobs: activeJobs,
  state: "busy",
  started_at: Date.now() - 1000,
  updated_at: Date.now(),
});

describe("HTTP edge cases answer 4xx, never 500", () => {
  let stack: BatchStack;
  const call = async (method: string, path: string, body?: unknown, key = API_KEY) => {
    const payload = body === undefined ? null : typeof body === "string" ? body : JSON.stringify(body);
    const response = await fetch(`${stack.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: payload,
    });
    const text = await response.text();
    let json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, headers: response.headers, text, json };
  };

  before(async () => {
    stack = await startBatchStack({
      worker: false,
      env: { CORRAL_ADMIN_KEY: ADMIN_KEY, CORRAL_BODY_IDLE_TIMEOUT_MS: "500", CORRAL_METRICS_TOKEN: METRICS_TOKEN },
    });
  });
  after(async () => {
    await stack?.close();
  });

  test("a malformed percent-escape in a route parameter is a 400 JSON error", async () => {
    for (const path of [
      "/v1/jobs/%ZZ",
      "/v1/files/%ZZ",
      "/v1/files/%E0%A4%A/content",
      "/v1/batches/%ZZ",
      "/v1/models/%",
    ]) {
      const response = await call("GET", path);
      assert.equal(response.status, 400, `${path}: ${response.text}`);
      assert.equal(response.json?.error?.code, "invalid_path", path);
    }
  });

  test("a file named in Unicode downloads, with an RFC 5987 filename*", async () => {
    const data = new FormData();
    data.append("file", new Blob(['{"custom_id":"a"}\n']), "中文.jsonl");
    data.append("purpose", "batch");
    const uploaded = await fetch(`${stack.url}/v1/files`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}` },
      body: data,
    });
    assert.equal(uploaded.status, 200);
    const file = (await uploaded.json()) as { id: string; filename: string };
    assert.equal(file.filename, "中文.jsonl");
    const content = await call("GET", `/v1/files/${file.id}/content`);
    assert.equal(content.status, 200, content.text);
    assert.equal(content.text, '{"custom_id":"a"}\n');
    assert.match(content.headers.get("content-disposition") ?? "", /filename\*=UTF-8''%E4%B8%AD%E6%96%87\.jsonl/);
  });

  test("a schema annotation 20,000 levels deep is a 400 on the OpenAI and native routes", async () => {
    const chat = await call(
      "POST",
      "/v1/chat/completions",
      deepAnnotationBody(20_000, { model: STORIES, messages: [{ role: "user", content: "hi" }], max_tokens: 4 }),
    );
    assert.equal(chat.status, 400, chat.text);
    const native = await call(
      "POST",
      "/v1/jobs",
      deepAnnotationBody(20_000, { model: STORIES, prompt: "hi", max_tokens: 4 }),
    );
    assert.equal(native.status, 400, native.text);
  });

  test("the native /v1/jobs route rejects a response_format the grammar cannot enforce, as the OpenAI routes do", async () => {
    const format = {
      type: "json_schema",
      json_schema: { name: "p", schema: { type: "string", pattern: "^(?=a)a+$" } },
    };
    const native = await call("POST", "/v1/jobs", {
      model: STORIES,
      prompt: "hi",
      max_tokens: 4,
      response_format: format,
    });
    assert.equal(native.status, 400, native.text);
    assert.equal(native.json.error.code, "unsupported_schema");
    assert.equal(native.json.error.param, "response_format.json_schema.schema");
  });

  test("/v1/workers shows a tenant only its own jobs and no host details; the admin sees everything", async () => {
    const mine = await call("POST", "/v1/jobs", { model: STORIES, prompt: "hi", max_tokens: 4 });
    const theirs = await call("POST", "/v1/jobs", { model: STORIES, prompt: "hi", max_tokens: 4 }, OTHER_KEY);
    assert.equal(mine.status, 202);
    assert.equal(theirs.status, 202);
    const registry = new WorkerRegistry({ redis: stack.redis, keys: stack.keys, logger: pino({ level: "silent" }) });
    await registry.heartbeat(heartbeat("w1", [mine.json.id, theirs.json.id]), 30);

    const tenantView = await call("GET", "/v1/workers");
    assert.equal(tenantView.status, 200);
    const [worker] = tenantView.json.data;
    assert.deepEqual(worker.active_jobs, [mine.json.id]);
    assert.ok(!tenantView.text.includes("gpu-box-secret-hostname"), tenantView.text);
    assert.ok(!tenantView.text.includes("4242"), tenantView.text);

    const adminView = await call("GET", "/v1/workers", undefined, ADMIN_KEY);
    assert.deepEqual(adminView.json.data[0].active_jobs, [mine.json.id, theirs.json.id]);
    assert.equal(adminView.json.data[0].host, "gpu-box-secret-hostname");
    assert.equal(adminView.json.data[0].pid, 4242);
  });

  test("a request body that stops arriving is cut off after the body idle timeout", async () => {
    const url = new URL(stack.url);
    const started = Date.now();
    const closed = await new Promise<boolean>((resolve) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(
          `POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\n` +
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
        );
      });
      socket.on("data", () => {});
      socket.on("error", () => {});
      socket.on("close", () => resolve(true));
      setTimeout(() => {
        socket.destroy();
        resolve(false);
      }, 15_000).unref();
    });
    assert.ok(closed, "the server kept a stalled body open for 15 s");
    assert.ok(Date.now() - started < 15_000);
  });

  test("bull-board is read-only by default: the admin can look, not pause or remove", async () => {
    await call("POST", "/v1/jobs", { model: STORIES, prompt: "hi", max_tokens: 4 });
    const queues = await call("GET", "/admin/queues/api/queues", undefined, ADMIN_KEY);
    assert.equal(queues.status, 200, queues.text);
    const name = queues.json.queues[0].name as string;
    const pause = await call("PUT", `/admin/queues/api/queues/${encodeURIComponent(name)}/pause`, undefined, ADMIN_KEY);
    assert.ok(pause.status >= 400 && pause.status < 500, `${pause.status} ${pause.text}`);
  });

  test("with CORRAL_METRICS_TOKEN set, /metrics needs it as a bearer token", async () => {
    assert.equal((await fetch(`${stack.url}/metrics`)).status, 401);
    assert.equal((await call("GET", "/metrics", undefined, API_KEY)).status, 401);
    const ok = await call("GET", "/metrics", undefined, METRICS_TOKEN);
    assert.equal(ok.status, 200);
    assert.match(ok.text, /corral_/);
  });
});
