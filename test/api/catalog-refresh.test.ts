import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { rename, rm, symlink, unlink } from "node:fs/promises";
import { join } from "node:path";
import { Queue } from "bullmq";
import { JobRecord, laneName } from "@corral/shared";
import { sharedModelsDir } from "../support/models.js";
import { setTimeout as sleep } from "node:timers/promises";
import { errorOf, startApi, type ApiHarness } from "./harness.js";

const GRACE_MS = 1500;

// The scheduler's catalog follows its models folder (fs.watch, debounced) with periodic
// rescans off, and fails the waiting jobs of a model that stays gone: real Redis, no worker
// (jobs stay held for fair claim), a temp folder of symlinks to the tiny models.
describe("a catalog that refreshes itself", () => {
  let api: ApiHarness;
  before(async () => {
    api = await startApi({
      env: { CORRAL_CATALOG_RESCAN_MS: "0", CORRAL_MODEL_REMOVED_GRACE_MS: String(GRACE_MS) },
    });
  });
  after(async () => {
    await api?.close();
  });

  const stories = join(sharedModelsDir(), "stories260K.gguf");
  const modelIds = async () =>
    ((await api.request("GET", "/v1/models")).json as { data: { id: string }[] }).data.map((m) => m.id);
  /** Polls until `ok`, up to `ms`; resolves with the time it took. */
  const until = async (ok: () => Promise<boolean>, ms: number, what: string): Promise<number> => {
    const started = Date.now();
    while (!(await ok())) {
      if (Date.now() - started > ms) assert.fail(`${what}: not within ${ms} ms`);
      await sleep(50);
    }
    return Date.now() - started;
  };
  const submit = async (model: string, n: number): Promise<string[]> => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const response = await api.request("POST", "/v1/jobs", {
        body: { model, prompt: `Once upon a time ${i}`, max_tokens: 8 },
      });
      assert.equal(response.status, 202, response.text);
      ids.push(JobRecord.parse(response.json).id);
    }
    return ids;
  };
  const recordOf = async (id: string) => JobRecord.parse((await api.request("GET", `/v1/jobs/${id}`)).json);
  const held = (model: string) => api.redis.zcard(api.keys.fairJobs(laneName(model)));

  test("a .gguf added to the folder is in the catalog within 2 s, without a rescan timer", async () => {
    await symlink(stories, join(api.modelsDir, "fresh.gguf"));
    const ms = await until(async () => (await modelIds()).includes("fresh"), 2000, "the new model");
    assert.ok(ms < 2000, `seen after ${ms} ms`);
  });

  test("removed: its held jobs fail with model_removed after the grace period, and leave the lane", async () => {
    await symlink(stories, join(api.modelsDir, "doomed.gguf"));
    await until(async () => (await modelIds()).includes("doomed"), 2000, "the new model");
    const ids = await submit("doomed", 3);
    assert.equal(await held("doomed"), 3);
    // An OpenAI request waiting on the model gets the job's error when it fails.
    const waiting = api.request("POST", "/v1/completions", {
      body: { model: "doomed", prompt: "Once upon a time", max_tokens: 8 },
    });

    await unlink(join(api.modelsDir, "doomed.gguf"));
    await until(async () => !(await modelIds()).includes("doomed"), 2000, "the model leaving the catalog");
    await sleep(GRACE_MS / 2);
    assert.equal((await recordOf(ids[0]!)).status, "queued", "nothing fails within the grace period");

    await until(async () => (await recordOf(ids[2]!)).status === "failed", GRACE_MS + 3000, "the jobs failing");
    for (const id of ids) {
      const record = await recordOf(id);
      assert.equal(record.status, "failed");
      assert.equal(record.error?.code, "model_removed");
      assert.match(record.error?.message ?? "", /`doomed` was removed from the catalog/);
    }
    const response = await waiting;
    assert.equal(response.status, 404, response.text);
    assert.equal(errorOf(response).code, "model_removed");
    assert.equal(errorOf(response).param, "model");

    assert.equal(await held("doomed"), 0, "no fair-claim entry is left");
    assert.deepEqual(await api.redis.zrange(api.keys.fairTenants(laneName("doomed")), 0, -1), []);
    const queue = new Queue(laneName("doomed"), { connection: api.redis, prefix: api.prefix });
    try {
      const counts = await queue.getJobCounts("wait", "prioritized", "delayed");
      assert.deepEqual(counts, { wait: 0, prioritized: 0, delayed: 0 });
    } finally {
      await queue.close();
    }
  });

  test("replaced (deleted, then back within the grace period): nothing fails", async () => {
    const file = join(api.modelsDir, "phoenix.gguf");
    await symlink(stories, file);
    await until(async () => (await modelIds()).includes("phoenix"), 2000, "the new model");
    const ids = await submit("phoenix", 2);

    await unlink(file);
    await until(async () => !(await modelIds()).includes("phoenix"), 2000, "the model leaving the catalog");
    // The new version is written beside it and renamed into place, as a download does.
    await symlink(stories, join(api.modelsDir, "phoenix.gguf.part"));
    await rename(join(api.modelsDir, "phoenix.gguf.part"), file);
    await until(async () => (await modelIds()).includes("phoenix"), 2000, "the model coming back");

    await sleep(GRACE_MS + 1500);
    for (const id of ids) assert.equal((await recordOf(id)).status, "queued");
    assert.equal(await held("phoenix"), 2);
  });

  test("a scheduler started while a model is gone fails the jobs left for it, one grace period later", async () => {
    await symlink(stories, join(api.modelsDir, "orphan.gguf"));
    await until(async () => (await modelIds()).includes("orphan"), 2000, "the new model");
    const ids = await submit("orphan", 2);
    // A scheduler started on the same Redis whose folder does not have the model, as one
    // restarted after the file was deleted would be (the first one still serves it).
    const other = await startApi({
      env: {
        CORRAL_PREFIX: api.prefix,
        CORRAL_CATALOG_RESCAN_MS: "0",
        CORRAL_MODEL_REMOVED_GRACE_MS: String(GRACE_MS),
      },
    });
    try {
      await until(async () => (await recordOf(ids[1]!)).status === "failed", GRACE_MS + 3000, "the jobs failing");
      for (const id of ids) assert.equal((await recordOf(id)).error?.code, "model_removed");
      assert.equal(await held("orphan"), 0);
    } finally {
      // Not other.close(): that would delete the prefix the first scheduler still uses.
      await other.scheduler.close();
      other.redis.disconnect();
      await rm(other.modelsDir, { recursive: true, force: true });
    }
  });
});
