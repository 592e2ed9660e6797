import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { JobRecord } from "@corral/shared";
import { Slot, type WorkerConfig } from "@corral/worker";
import { CPU0, STORIES, createHarness, type Harness } from "./support/harness.js";

// One slot with four sequences in this process, the real engine and real Redis.

const MODELS_YAML = "models:\n  - file: stories260K.gguf\n    sequences: 4\n";

describe("a tenant's max_active (CORRAL_TENANT_MAX_ACTIVE) on a slot", () => {
  let h: Harness;
  let slot: Slot | null = null;
  const start = async (config: WorkerConfig) => {
    slot = await Slot.start({ config, slot: CPU0, logger: h.logger });
    return slot;
  };

  before(async () => {
    h = await createHarness({ label: "tenant-limit", modelsYaml: MODELS_YAML });
  });
  afterEach(async () => {
    await slot?.close(0);
    slot = null;
  });
  after(async () => {
    await h?.close();
  });

  test("runs at most max_active of a tenant's jobs at once: the others park and run as places free, other tenants' jobs alongside", async () => {
    const s = await start(h.config());
    let most = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        most = Math.max(most, await h.redis.zcard(h.keys.tenantActive("capped")));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const capped: JobRecord[] = [];
    for (let i = 0; i < 4; i++)
      capped.push(
        await h.submit({ model: STORIES, prompt: `Once ${i}`, max_tokens: 200, tenant: "capped", max_active: 1 }),
      );
    const other = await h.submit({ model: STORIES, prompt: "Once more", max_tokens: 200, tenant: "free" });
    const done = await Promise.all(capped.map((r) => h.waitFor(r.id)));
    const otherDone = await h.waitFor(other.id);
    sampling = false;
    await sampler;

    assert.ok([...done, otherDone].every((r) => r.status === "succeeded" && r.attempts === 1));
    assert.equal(most, 1, "never two of the capped tenant's jobs holding a place");
    // Generations did not overlap: each ended (and left its place) before the next started.
    const byStart = [...done].sort((a, b) => a.started_at! - b.started_at!);
    for (let i = 1; i < byStart.length; i++) {
      const prev = byStart[i - 1]!;
      const generated = prev.started_at! + prev.result!.timings.load_ms + prev.result!.timings.generation_ms;
      assert.ok(generated <= byStart[i]!.started_at! + 2, `job ${i} started before job ${i - 1} was done`);
    }
    assert.ok(otherDone.started_at! < byStart.at(-1)!.started_at!, "the other tenant did not wait for the backlog");
    const parked = (await s.metrics.jobsParked.get()).values.find((v) => v.labels.model === STORIES)?.value ?? 0;
    assert.ok(parked >= 3, `parked ${parked} times`);
    assert.equal(await h.redis.zcard(h.keys.tenantActive("capped")), 0, "every place freed");
    assert.equal(await h.redis.llen(h.keys.tenantParked("capped")), 0, "nothing left parked");
  });
});
