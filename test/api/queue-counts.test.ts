import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { laneName } from "@corral/shared";
import { startApi, storiesJob, type ApiHarness } from "./harness.js";

const LAB_KEY = "sk-lab-0123456789abcdef";
const GUEST_KEY = "sk-guest-0123456789abcdef";

// No worker runs: every job the scheduler queues stays waiting on the stories lane.
describe("GET /v1/queue: per model, jobs waiting and running over all tenants, as counts only", () => {
  let api: ApiHarness;

  before(async () => {
    api = await startApi({ env: { CORRAL_API_KEYS: `lab:${LAB_KEY},guest:${GUEST_KEY}` } });
  });
  after(async () => {
    await api?.close();
  });

  test("lists every catalog model, idle ones with zeros and no wait", async () => {
    const response = await api.request("GET", "/v1/queue", { key: GUEST_KEY });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.json.object, "list");
    const stories = response.json.data.find((m: { model: string }) => m.model === "stories260K");
    assert.deepEqual(stories, {
      object: "queue.model",
      model: "stories260K",
      waiting: 0,
      running: 0,
      rate_per_second: null,
      expected_wait_ms: 0,
    });
  });

  test("a tenant sees another tenant's waiting jobs counted, never their ids, tenant or prompt", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const submitted = await api.request("POST", "/v1/jobs", {
        key: LAB_KEY,
        body: storiesJob({ prompt: `secret prompt ${i}` }),
      });
      assert.equal(submitted.status, 202, submitted.text);
      ids.push(submitted.json.id);
    }
    const response = await api.request("GET", "/v1/queue", { key: GUEST_KEY });
    assert.equal(response.status, 200, response.text);
    const stories = response.json.data.find((m: { model: string }) => m.model === "stories260K");
    assert.equal(stories.waiting, 3);
    assert.equal(stories.running, 0);
    // Nothing finished on the lane: no rate, so no expected wait.
    assert.equal(stories.expected_wait_ms, null);
    for (const id of ids) assert.ok(!response.text.includes(id), "a job id leaked");
    assert.ok(!response.text.includes("lab"), "the other tenant's name leaked");
    assert.ok(!response.text.includes("secret prompt"), "a prompt leaked");

    // With 30 jobs finished over the last 30 s (as BullMQ records them), the 3 waiting ones
    // are expected to take about 3 s.
    const now = Date.now();
    for (let i = 0; i < 30; i++)
      await api.redis.zadd(`${api.keys.prefix}:${laneName("stories260K")}:completed`, now - 1000 * i, `done-${i}`);
    const later = await api.request("GET", "/v1/queue", { key: LAB_KEY });
    const busy = later.json.data.find((m: { model: string }) => m.model === "stories260K");
    assert.ok(busy.rate_per_second > 0.9 && busy.rate_per_second < 1.1, String(busy.rate_per_second));
    assert.ok(Math.abs(busy.expected_wait_ms - 3000) < 400, String(busy.expected_wait_ms));
  });

  test("needs a key", async () => {
    const response = await api.request("GET", "/v1/queue");
    assert.equal(response.status, 401);
  });
});
