import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Slot } from "@corral/worker";
import { CPU0, STORIES, createHarness, type Harness } from "./support/harness.js";

// One slot in this process, with the real engine (llama.cpp on the CPU) and real Redis.
describe("a slot's per-tenant metrics", () => {
  let h: Harness;
  let slot: Slot | null = null;

  before(async () => {
    h = await createHarness({ label: "tenant-metrics" });
  });
  after(async () => {
    await slot?.close(0);
    await h?.close();
  });

  test("counts each tenant's service tokens when its job ends and observes its wait when the job starts", async () => {
    slot = await Slot.start({ config: h.config(), slot: CPU0, logger: h.logger });
    const record = await h.submit({ model: STORIES, prompt: "Once upon a time", max_tokens: 16 });
    const done = await h.waitFor(record.id);
    assert.equal(done.status, "succeeded");
    const { prompt_tokens, completion_tokens } = done.result!.usage;
    assert.ok(completion_tokens > 0);
    const service = await slot.metrics.tenantServiceTokens.get();
    assert.deepEqual(
      service.values.map((v) => [v.labels.tenant, v.value]),
      [[done.tenant, prompt_tokens + completion_tokens]],
    );
    const wait = await slot.metrics.tenantWait.get();
    const count = wait.values.find((v) => v.metricName === "corral_tenant_wait_seconds_count");
    const sum = wait.values.find((v) => v.metricName === "corral_tenant_wait_seconds_sum");
    assert.equal(count?.labels.tenant, done.tenant);
    assert.equal(count?.value, 1);
    // The wait is the record's own: from its creation to its start.
    assert.ok(Math.abs(sum!.value - (done.started_at! - done.created_at) / 1000) < 0.005, `${sum!.value} s`);
  });
});
