import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { errorOf, startApi, storiesJob, type ApiHarness } from "./harness.js";

describe("POST /v1/jobs and /v1/jobs/:id reject bad input with a 4xx naming the field", () => {
  let api: ApiHarness;
  before(async () => {
    api = await startApi();
  });
  after(async () => {
    await api?.close();
  });

  const cases: Array<{ name: string; body: Record<string, unknown>; param: string; code?: string }> = [
    { name: "max_tokens of the wrong type", body: storiesJob({ max_tokens: "16" }), param: "max_tokens" },
    { name: "negative max_tokens", body: storiesJob({ max_tokens: -5 }), param: "max_tokens" },
    { name: "temperature 5", body: storiesJob({ temperature: 5 }), param: "temperature" },
    { name: "five stop strings", body: storiesJob({ stop: ["a", "b", "c", "d", "e"] }), param: "stop" },
    { name: "a number as the prompt", body: storiesJob({ prompt: 42 }), param: "prompt" },
    { name: "neither prompt nor messages", body: { model: "stories260K" }, param: "prompt" },
    {
      name: "both prompt and messages",
      body: storiesJob({ messages: [{ role: "user", content: "hi" }] }),
      param: "messages",
    },
    {
      name: "a message with an unknown role",
      body: { model: "stories260K", messages: [{ role: "wizard", content: "hi" }] },
      param: "messages.0.role",
    },
    {
      name: "a message whose content is not a string",
      body: { model: "stories260K", messages: [{ role: "user", content: ["hi"] }] },
      param: "messages.0.content",
    },
    { name: "a missing model", body: { prompt: "hi" }, param: "model" },
    { name: "an unknown field", body: storiesJob({ temprature: 0.5 }), param: "temprature", code: "unknown_parameter" },
    { name: "priority out of range", body: storiesJob({ priority: 0 }), param: "priority" },
    {
      name: "max_tokens beyond the model's context",
      body: storiesJob({ max_tokens: 100_000 }),
      param: "max_tokens",
      code: "context_length_exceeded",
    },
  ];
  for (const { name, body, param, code } of cases) {
    test(`${name} → 400 with param ${param}`, async () => {
      const response = await api.request("POST", "/v1/jobs", { body });
      assert.equal(response.status, 400, response.text);
      const error = errorOf(response);
      assert.equal(error.type, "invalid_request_error");
      assert.equal(error.param, param);
      if (code) assert.equal(error.code, code);
      assert.ok(error.message.length > 0);
    });
  }

  test("a body that is a JSON array → 400 about the body", async () => {
    const response = await api.request("POST", "/v1/jobs", { body: "[1,2]" });
    assert.equal(response.status, 400);
    assert.equal(errorOf(response).param, null);
  });

  test("an unknown model → 404 model_not_found listing the models", async () => {
    const response = await api.request("POST", "/v1/jobs", { body: storiesJob({ model: "gpt-17" }) });
    assert.equal(response.status, 404);
    const error = errorOf(response);
    assert.equal(error.code, "model_not_found");
    assert.equal(error.param, "model");
    assert.match(error.message, /stories260K/);
    assert.match(error.message, /llama-2-tiny-random/);
  });

  test("a 2 MiB body → 413", async () => {
    const body = JSON.stringify(storiesJob({ prompt: "x".repeat(2 * 1024 * 1024) }));
    const response = await api.request("POST", "/v1/jobs", { body });
    assert.equal(response.status, 413);
    assert.equal(errorOf(response).code, "payload_too_large");
  });

  test("an empty body → 400 empty_body", async () => {
    const response = await api.request("POST", "/v1/jobs", { body: "" });
    assert.equal(response.status, 400);
    assert.equal(errorOf(response).code, "empty_body");
  });

  test("no body and no Content-Type → 415", async () => {
    const response = await api.request("POST", "/v1/jobs");
    assert.equal(response.status, 415);
    assert.equal(errorOf(response).code, "unsupported_media_type");
  });

  test("non-JSON → 400 invalid_json", async () => {
    const response = await api.request("POST", "/v1/jobs", { body: "{model: stories260K" });
    assert.equal(response.status, 400);
    assert.equal(errorOf(response).code, "invalid_json");
  });

  test("a form-encoded body → 415 naming the Content-Type", async () => {
    const response = await api.request("POST", "/v1/jobs", {
      body: "model=stories260K&prompt=hi",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    assert.equal(response.status, 415);
    assert.match(errorOf(response).message, /application\/x-www-form-urlencoded/);
  });

  test("application/json with a charset parameter is accepted", async () => {
    const response = await api.request("POST", "/v1/jobs", {
      body: storiesJob(),
      headers: { "content-type": "application/json; charset=utf-8" },
    });
    assert.equal(response.status, 202, response.text);
  });

  const hostileIds = [
    "..%2F..%2Fetc%2Fpasswd",
    encodeURIComponent("1' OR '1'='1"),
    encodeURIComponent(`"; redis.call('flushall') --`),
    "x".repeat(65),
  ];
  for (const id of hostileIds) {
    test(`hostile job id ${id.slice(0, 30)} → 400 param id on GET and DELETE, Redis intact`, async () => {
      const sentinel = `${api.keys.prefix}:sentinel`;
      await api.redis.set(sentinel, "still here");
      for (const method of ["GET", "DELETE"]) {
        const response = await api.request(method, `/v1/jobs/${id}`);
        assert.ok(response.status >= 400 && response.status < 500, `${method} gave ${response.status}`);
        assert.equal(response.status, 400);
        const error = errorOf(response);
        assert.equal(error.param, "id");
        assert.equal(error.code, "invalid_job_id");
      }
      assert.equal(await api.redis.get(sentinel), "still here");
    });
  }

  test("a well-formed id that does not exist → 404 job_not_found", async () => {
    const response = await api.request("GET", "/v1/jobs/job_doesnotexist");
    assert.equal(response.status, 404);
    assert.equal(errorOf(response).code, "job_not_found");
    assert.equal(errorOf(response).param, "id");
  });

  for (const wait of ["-1", "61", "abc", "1e3", ""]) {
    test(`?wait=${wait} → 400 param wait`, async () => {
      const submitted = await api.request("POST", "/v1/jobs", { body: storiesJob() });
      const response = await api.request("GET", `/v1/jobs/${submitted.json.id}?wait=${wait}`);
      assert.equal(response.status, 400);
      assert.equal(errorOf(response).param, "wait");
    });
  }

  for (const [query, param] of [
    ["limit=0", "limit"],
    ["limit=101", "limit"],
    ["limit=ten", "limit"],
    ["status=done", "status"],
    ["after=..%2Fx", "after"],
    ["status=queued&status=running", "status"],
  ] as const) {
    test(`GET /v1/jobs?${query} → 400 param ${param}`, async () => {
      const response = await api.request("GET", `/v1/jobs?${query}`);
      assert.equal(response.status, 400, response.text);
      assert.equal(errorOf(response).param, param);
    });
  }

  test("an unknown route → 404 JSON", async () => {
    const response = await api.request("GET", "/v1/nothing-here");
    assert.equal(response.status, 404);
    assert.equal(errorOf(response).code, "route_not_found");
    const outside = await api.request("GET", "/nothing");
    assert.equal(outside.status, 404);
    assert.equal(errorOf(outside).type, "invalid_request_error");
  });

  test("a wrong method on a known path → 404 JSON, not HTML", async () => {
    const response = await api.request("PUT", "/v1/jobs");
    assert.equal(response.status, 404);
    errorOf(response);
  });

  test("GET /v1/models/:id of an unknown model → 404 model_not_found", async () => {
    const response = await api.request("GET", "/v1/models/nope");
    assert.equal(response.status, 404);
    assert.equal(errorOf(response).code, "model_not_found");
  });
});
