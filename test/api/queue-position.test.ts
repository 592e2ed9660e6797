import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { FairQueue, bullPriority, estimateCost, laneName } from "@corral/shared";
import { startApi, storiesJob, type ApiHarness } from "./harness.js";

const LAB_KEY = "sk-lab-0123456789abcdef";
const GUEST_KEY = "sk-guest-0123456789abcdef";

// No worker runs: every job stays queued, held on the stories lane for fair claim.
describe("GET /v1/jobs/:id shows a queued job's queue_position and estimated_start_at", () => {
  let api: ApiHarness;
  const lane = laneName("stories260K");

  before(async () => {
    api = await startApi({ env: { CORRAL_API_KEYS: `lab:${LAB_KEY},guest:${GUEST_KEY}` } });
  });
  after(async () => {
    await api?.close();
  });

  /** Submits a job and holds it for fair claim as the submit path does. */
  async function submit(key: string): Promise<string> {
    const response = await api.request("POST", "/v1/jobs", { key, body: storiesJob() });
    assert.equal(response.status, 202, response.text);
    const record = response.json;
    await new FairQueue(api.redis, api.keys).hold(lane, [
      {
        id: record.id,
        tenant: record.tenant,
        weight: 1,
        priority: bullPriority("native", record.priority),
        createdAt: record.created_at,
        cost: estimateCost(5, 16),
      },
    ]);
    return record.id;
  }
  const get = async (key: string, id: string, query = "") => {
    const response = await api.request("GET", `/v1/jobs/${id}${query}`, { key });
    assert.equal(response.status, 200, response.text);
    return response.json;
  };

  test("positions follow fair claim: a second tenant's job goes second, not behind the first tenant's backlog", async () => {
    const lab: string[] = [];
    for (let i = 0; i < 3; i++) lab.push(await submit(LAB_KEY));
    const guest = await submit(GUEST_KEY);
    const positions = [];
    for (const id of lab) positions.push((await get(LAB_KEY, id)).queue_position);
    assert.deepEqual(positions, [1, 3, 4]);
    const guestRecord = await get(GUEST_KEY, guest);
    assert.equal(guestRecord.status, "queued");
    assert.equal(guestRecord.queue_position, 2);
    // Nothing finished on the lane yet: no rate, so no start estimate.
    assert.equal("estimated_start_at" in guestRecord, false);

    // The lane finished 20 jobs in the last 10 s (as BullMQ records them): 2 per second.
    const now = Date.now();
    for (let i = 0; i < 20; i++)
      await api.redis.zadd(`${api.keys.prefix}:${lane}:completed`, now - 500 * i, `done-${i}`);
    const later = await get(LAB_KEY, lab[2]!, "?wait=0.2");
    assert.equal(later.status, "queued");
    assert.equal(later.queue_position, 4);
    // The lane has waited under MIN_BUSY_MS, so the whole last minute counts: 20 / 60 s, and
    // position 4 starts in about 12 s.
    const expected = now + (4 / (20 / 60)) * 1000;
    assert.ok(Math.abs(later.estimated_start_at - expected) < 2000, `${later.estimated_start_at} vs ${expected}`);

    // A cancelled job has neither.
    const cancelled = await api.request("DELETE", `/v1/jobs/${lab[0]}`, { key: LAB_KEY });
    assert.equal(cancelled.json.status, "cancelled");
    const record = await get(LAB_KEY, lab[0]!);
    assert.equal("queue_position" in record, false);
    assert.equal("estimated_start_at" in record, false);
  });

  test("a queued job that is not held for fair claim has no position", async () => {
    const response = await api.request("POST", "/v1/jobs", { key: GUEST_KEY, body: storiesJob() });
    const record = await get(GUEST_KEY, response.json.id);
    assert.equal(record.status, "queued");
    assert.equal("queue_position" in record, false);
  });
});

describe("/metrics: each tenant's held jobs and virtual token counter, read at scrape time", () => {
  let api: ApiHarness;
  const lane = laneName("stories260K");

  before(async () => {
    api = await startApi({ env: { CORRAL_API_KEYS: `lab:${LAB_KEY},guest:${GUEST_KEY}` } });
  });
  after(async () => {
    await api?.close();
  });

  test("corral_tenant_backlog_jobs and corral_tenant_virtual_tokens follow holds and releases", async () => {
    const fair = new FairQueue(api.redis, api.keys);
    for (const [key, count] of [
      [LAB_KEY, 3],
      [GUEST_KEY, 1],
    ] as const) {
      for (let i = 0; i < count; i++) {
        const { json: record } = await api.request("POST", "/v1/jobs", { key, body: storiesJob() });
        await api.redis.zadd(`${api.keys.prefix}:${lane}:delayed`, 1e15, record.id);
        await fair.hold(lane, [
          {
            id: record.id,
            tenant: record.tenant,
            weight: key === LAB_KEY ? 2 : 1,
            priority: bullPriority("native", record.priority),
            createdAt: record.created_at,
            cost: 40,
          },
        ]);
      }
    }
    // lab's oldest job goes first (counters tie), charged 40 ÷ 2; then guest's, charged 40.
    assert.deepEqual(
      (await fair.release(lane, 2)).map((job) => job.tenant),
      ["lab", "guest"],
    );
    const metrics = await api.request("GET", "/metrics");
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /^corral_tenant_backlog_jobs\{tenant="lab",model="stories260K"\} 2$/m);
    assert.match(metrics.text, /^corral_tenant_backlog_jobs\{tenant="guest",model="stories260K"\} 0$/m);
    assert.match(metrics.text, /^corral_tenant_virtual_tokens\{tenant="lab"\} 20$/m);
    assert.match(metrics.text, /^corral_tenant_virtual_tokens\{tenant="guest"\} 40$/m);
  });
});
