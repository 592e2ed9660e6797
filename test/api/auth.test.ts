import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { errorOf, startApi, storiesJob, type ApiHarness } from "./harness.js";

const LAB_A = "sk-lab-a-0123456789abcdef";
const LAB_B = "sk-lab-b-fedcba9876543210";
const ADMIN = "sk-admin-00112233445566778899";

describe("API keys", () => {
  let api: ApiHarness;
  before(async () => {
    api = await startApi({ env: { CORRAL_API_KEYS: `lab-a:${LAB_A},lab-b:${LAB_B}`, CORRAL_ADMIN_KEY: ADMIN } });
  });
  after(async () => {
    await api?.close();
  });

  for (const [name, headers] of [
    ["no Authorization header", {}],
    ["a wrong key", { authorization: "Bearer sk-not-a-real-key-at-all" }],
    ["a key that is a prefix of a real one", { authorization: `Bearer ${LAB_A.slice(0, -1)}` }],
    ["a non-Bearer scheme", { authorization: `Basic ${LAB_A}` }],
    ["an empty Bearer", { authorization: "Bearer " }],
  ] as const) {
    test(`${name} → 401 invalid_api_key on every /v1 route`, async () => {
      for (const [method, path] of [
        ["GET", "/v1/jobs"],
        ["POST", "/v1/jobs"],
        ["GET", "/v1/jobs/job_x"],
        ["DELETE", "/v1/jobs/job_x"],
        ["GET", "/v1/models"],
        ["GET", "/v1/workers"],
      ] as const) {
        const response = await api.request(method, path, { headers: { ...headers } });
        assert.equal(response.status, 401, `${method} ${path}`);
        assert.equal(errorOf(response).code, "invalid_api_key");
        assert.equal(errorOf(response).type, "invalid_request_error");
      }
    });
  }

  test("a tenant key maps to its tenant", async () => {
    const response = await api.request("POST", "/v1/jobs", { key: LAB_B, body: storiesJob() });
    assert.equal(response.status, 202);
    assert.equal(response.json.tenant, "lab-b");
    const listed = await api.request("GET", "/v1/jobs", { key: LAB_B });
    assert.equal(listed.json.data[0].id, response.json.id);
  });

  test("the Bearer scheme is case-insensitive", async () => {
    const response = await api.request("GET", "/v1/models", { headers: { authorization: `bearer ${LAB_A}` } });
    assert.equal(response.status, 200);
  });

  test("the admin key is accepted everywhere as tenant admin", async () => {
    const response = await api.request("POST", "/v1/jobs", { key: ADMIN, body: storiesJob() });
    assert.equal(response.status, 202);
    assert.equal(response.json.tenant, "admin");
    assert.equal((await api.request("GET", "/v1/workers", { key: ADMIN })).status, 200);
  });

  test("health, readiness and metrics need no key", async () => {
    for (const path of ["/healthz", "/readyz", "/metrics"]) {
      assert.equal((await api.request("GET", path)).status, 200, path);
    }
  });

  test("the key never appears in responses", async () => {
    const response = await api.request("GET", "/v1/jobs", {
      headers: { authorization: "Bearer sk-not-a-real-key-at-all" },
    });
    assert.ok(!response.text.includes("sk-not-a-real-key-at-all"));
  });
});

describe("open mode (no CORRAL_API_KEYS)", () => {
  let api: ApiHarness;
  before(async () => {
    api = await startApi();
  });
  after(async () => {
    await api?.close();
  });

  test("callers without a key are tenant default", async () => {
    const response = await api.request("POST", "/v1/jobs", { body: storiesJob() });
    assert.equal(response.status, 202);
    assert.equal(response.json.tenant, "default");
    const got = await api.request("GET", `/v1/jobs/${response.json.id}`);
    assert.equal(got.status, 200);
  });

  test("any Bearer key is also tenant default", async () => {
    const response = await api.request("POST", "/v1/jobs", { key: "whatever-key-1234567", body: storiesJob() });
    assert.equal(response.status, 202);
    assert.equal(response.json.tenant, "default");
  });
});
