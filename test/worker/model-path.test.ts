import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Catalog } from "@corral/shared";
import { startWorker, type RunningWorker } from "@corral/worker";
import { sharedModelsDir } from "../support/models.js";
import { STORIES, createHarness, type Harness } from "./support/harness.js";

/**
 * Issue 16: the catalog the worker loads models from comes from Redis. A tampered entry
 * naming a file outside the models folder (here an absolute path to a real GGUF, which the
 * worker loaded and ran before) fails the job with model_file_error, not retried.
 */
describe("a catalog entry whose file is outside the models folder", () => {
  let h: Harness;
  let worker: RunningWorker | undefined;

  before(async () => {
    h = await createHarness({ label: "model-path" });
    const catalog = Catalog.parse(JSON.parse((await h.redis.get(h.keys.catalog))!));
    for (const model of catalog.models)
      if (model.id === STORIES) model.file = join(sharedModelsDir(), `${STORIES}.gguf`);
    await h.redis.set(h.keys.catalog, JSON.stringify(catalog));
    worker = await startWorker(h.config({ CORRAL_CPU: "true", CORRAL_CPU_SLOTS: "1" }), { logger: h.logger });
  });
  after(async () => {
    await worker?.close();
    await h?.close();
  });

  test("is refused: the job fails with model_file_error and is not retried", async () => {
    const record = await h.submit({ model: STORIES, prompt: "Once upon a time", max_tokens: 4, attempts: 3 });
    const done = await h.waitFor(record.id, undefined, 60_000);
    assert.equal(done.status, "failed", JSON.stringify(done));
    assert.equal(done.error?.code, "model_file_error");
    assert.match(done.error?.message ?? "", /is outside the models folder/);
    assert.equal(done.attempts, 1, "not retried");
  });
});
