import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { JobRecord } from "@corral/shared";
import { Slot, type SlotSpec, type WorkerConfig } from "@corral/worker";
import { CPU0, STORIES, createHarness, type Harness } from "./support/harness.js";

// One slot with four sequences in this process, the real engine and real Redis.

const MODELS_YAML = "models:\n  - file: stories260K.gguf\n    sequences: 4\n";

describe("a tenant's max_active (CORRAL_TENANT_MAX_ACTIVE) on a slot", () => {
  let h: Harness;
  let slots: Slot[] = [];
  const start = async (config: WorkerConfig, spec: SlotSpec = CPU0) => {
    const slot = await Slot.start({ config, slot: spec, logger: h.logger });
    slots.push(slot);
    return slot;
  };
  /** Samples how many places the tenant holds, every 5 ms, until `stop` is called; returns the most. */
  const sampleMost = (tenant: string) => {
    let most = 0;
    let sampling = true;
    const done = (async () => {
      while (sampling) {
        most = Math.max(most, await h.redis.zcard(h.keys.tenantActive(tenant)));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    return async () => {
      sampling = false;
      await done;
      return most;
    };
  };

  before(async () => {
    h = await createHarness({ label: "tenant-limit", modelsYaml: MODELS_YAML });
  });
  afterEach(async () => {
    await Promise.all(slots.map((slot) => slot.close(0)));
    slots = [];
  });
  after(async () => {
    await h?.close();
  });

  test("runs at most max_active of a tenant's jobs at once: the others park and run as places free, other tenants' jobs alongside", async () => {
    const s = await start(h.config());
    const stopSampling = sampleMost("capped");
    const capped: JobRecord[] = [];
    for (let i = 0; i < 4; i++)
      capped.push(
        await h.submit({ model: STORIES, prompt: `Once ${i}`, max_tokens: 200, tenant: "capped", max_active: 1 }),
      );
    const other = await h.submit({ model: STORIES, prompt: "Once more", max_tokens: 200, tenant: "free" });
    const done = await Promise.all(capped.map((r) => h.waitFor(r.id)));
    const otherDone = await h.waitFor(other.id);
    const most = await stopSampling();

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

  test("the limit holds across slots: two slots never run more than max_active of the tenant's jobs together", async () => {
    const config = h.config();
    await start(config, CPU0);
    await start(config, { ...CPU0, id: "test-box:cpu1", name: "cpu1" });
    const stopSampling = sampleMost("capped");
    const jobs: JobRecord[] = [];
    for (let i = 0; i < 8; i++)
      jobs.push(
        await h.submit({ model: STORIES, prompt: `Twice ${i}`, max_tokens: 120, tenant: "capped", max_active: 2 }),
      );
    const done = await Promise.all(jobs.map((r) => h.waitFor(r.id)));
    const most = await stopSampling();
    assert.ok(done.every((r) => r.status === "succeeded" && r.attempts === 1));
    assert.equal(most, 2, "two places held at the most, and both used");
    // At no moment were more than two generations under way, by the records' own times.
    const events = done.flatMap((r) => {
      const start = r.started_at! + r.result!.timings.load_ms;
      return [
        [start, 1],
        [start + r.result!.timings.generation_ms, -1],
      ] as const;
    });
    events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let running = 0;
    let peak = 0;
    for (const [, delta] of events) peak = Math.max(peak, (running += delta));
    assert.ok(peak <= 2, `${peak} generations at once`);
  });
});
