// bull-board on a real scheduler: /admin/queues is for the admin key only, and lists every lane.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { pino } from "pino";
import { loadConfig, startScheduler, type RunningScheduler } from "@corral/scheduler";
import { cleanupPrefix, testRedis, uniquePrefix } from "../support/redis.js";
import {
  ADMIN_KEY,
  API_KEYS,
  MODEL,
  TENANT_KEYS,
  makeModelsDir,
  submitJob,
  type ModelsDir,
} from "./support/fixtures.js";

describe("bull-board at /admin/queues on the scheduler", () => {
  let redisUrl: string;
  let prefix: string;
  let models: ModelsDir;
  let scheduler: RunningScheduler;

  before(async () => {
    redisUrl = (await testRedis()).url;
    prefix = uniquePrefix("obs-board");
    models = await makeModelsDir();
    const config = loadConfig({
      CORRAL_REDIS_URL: redisUrl,
      CORRAL_PREFIX: prefix,
      CORRAL_MODELS_DIR: models.path,
      CORRAL_DATA_DIR: join(models.path, "data"),
      CORRAL_PORT: "0",
      CORRAL_API_KEYS: API_KEYS,
      CORRAL_ADMIN_KEY: ADMIN_KEY,
      CORRAL_LOG_LEVEL: "silent",
    });
    scheduler = await startScheduler(config, { logger: pino({ level: "silent" }) });
    // A job makes the model's lane exist (no worker runs, so it stays waiting).
    const submitted = await submitJob(scheduler.url, TENANT_KEYS.acme, { model: MODEL, prompt: "Once", max_tokens: 4 });
    assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
  });

  after(async () => {
    await scheduler?.close();
    await cleanupPrefix(redisUrl, prefix);
    await models?.remove();
  });

  const get = (path: string, key?: string) =>
    fetch(`${scheduler.url}${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });

  test("the admin key gets the board's HTML page", async () => {
    const res = await get("/admin/queues", ADMIN_KEY);
    assert.equal(res.status, 200, "is bull-board mounted at /admin/queues? (createBullBoardRouter in src/admin)");
    assert.match(res.headers.get("content-type") ?? "", /text\/html/);
    assert.match(await res.text(), /<base href="\/admin\/queues\/"/);
  });

  test("the board lists the lanes that hold jobs", async () => {
    const res = await get("/admin/queues/api/queues", ADMIN_KEY);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { queues: Array<{ name: string }> };
    assert.ok(
      body.queues.some((queue) => queue.name === `lane-${MODEL}`),
      `lane-${MODEL} missing from ${JSON.stringify(body.queues.map((q) => q.name))}`,
    );
  });

  test("a tenant's key is refused", async () => {
    for (const path of ["/admin/queues", "/admin/queues/api/queues"]) {
      const res = await get(path, TENANT_KEYS.acme);
      assert.ok(res.status === 403 || res.status === 401, `${path}: expected 403 (or 401), got ${res.status}`);
      assert.doesNotMatch(res.headers.get("content-type") ?? "", /text\/html/);
    }
  });

  test("no key is 401", async () => {
    for (const path of ["/admin/queues", "/admin/queues/api/queues", "/admin/queues/static/favicon-32x32.png"]) {
      const res = await get(path);
      assert.equal(res.status, 401, path);
    }
  });
});
