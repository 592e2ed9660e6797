import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { FairQueue, laneName } from "@corral/shared";
import { startApi, storiesJob, type ApiHarness } from "./harness.js";

const LAB_KEY = "sk-lab-0123456789abcdef";
const GUEST_KEY = "sk-guest-0123456789abcdef";
const lane = laneName("stories260K");

// No worker runs: every job the scheduler queues stays held on the stories lane for fair claim.
describe("GET /v1/jobs/:id shows a queued job's queue_position and estimated_start_at", () => {
  let api: ApiHarness;

  before(async () => {
    api = await startApi({ env: { CORRAL_API_KEYS: `lab:${LAB_KEY},guest:${GUEST_KEY}` } });
  });
  after(async () => {
    await api?.close();
  });

  const submit = async (key: string): Promise<string> => {
    const response = await api.request("POST", "/v1/jobs", { key, body: storiesJob() });
    assert.equal(response.status, 202, response.text);
    return response.json.id;
  };
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

    // The lane finished 20 jobs before it started waiting (as BullMQ records them), from
    // 20 s to 29.5 s ago: fewer than 3 since, so the rate is 20 over the 29.5 s from the
    // oldest, and position 4 starts in about 5.9 s.
    const now = Date.now();
    for (let i = 0; i < 20; i++)
      await api.redis.zadd(`${api.keys.prefix}:${lane}:completed`, now - 20_000 - 500 * i, `done-${i}`);
    const later = await get(LAB_KEY, lab[2]!, "?wait=0.2");
    assert.equal(later.status, "queued");
    assert.equal(later.queue_position, 4);
    const expected = now + (4 / (20 / 29.5)) * 1000;
    assert.ok(Math.abs(later.estimated_start_at - expected) < 1000, `${later.estimated_start_at} vs ${expected}`);

    // Released to the lane's wait list (a slot is about to take it): still queued, first.
    const [released] = await new FairQueue(api.redis, api.keys).release(lane, 1);
    assert.equal(released!.id, lab[0]);
    assert.equal((await get(LAB_KEY, lab[0]!)).queue_position, 1);
    assert.equal((await get(GUEST_KEY, guest)).queue_position, 1, "the guest's job is next among the held ones");

    // A cancelled job has neither.
    const cancelled = await api.request("DELETE", `/v1/jobs/${lab[1]}`, { key: LAB_KEY });
    assert.equal(cancelled.json.status, "cancelled");
    const record = await get(LAB_KEY, lab[1]!);
    assert.equal("queue_position" in record, false);
    assert.equal("estimated_start_at" in record, false);
  });
});

describe("/metrics: each tenant's held jobs and virtual token counter, read at scrape time", () => {
  let api: ApiHarness;

  before(async () => {
    api = await startApi({
      env: { CORRAL_API_KEYS: `lab:${LAB_KEY},guest:${GUEST_KEY}`, CORRAL_TENANT_SHARES: "lab:2" },
    });
  });
  after(async () => {
    await api?.close();
  });

  test("corral_tenant_backlog_jobs and corral_tenant_virtual_tokens follow holds and releases", async () => {
    for (const [key, count] of [
      [LAB_KEY, 3],
      [GUEST_KEY, 1],
    ] as const) {
      for (let i = 0; i < count; i++) {
        const response = await api.request("POST", "/v1/jobs", { key, body: storiesJob() });
        assert.equal(response.status, 202, response.text);
      }
    }
    // lab's oldest job goes first (counters tie), charged its cost ÷ 2; then guest's, its whole cost.
    const released = await new FairQueue(api.redis, api.keys).release(lane, 2);
    assert.deepEqual(
      released.map((job) => job.tenant),
      ["lab", "guest"],
    );
    assert.equal(released[0]!.charged * 2, released[1]!.charged, "the same job, at weights 2 and 1");
    const metrics = await api.request("GET", "/metrics");
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /^corral_tenant_backlog_jobs\{tenant="lab",model="stories260K"\} 2$/m);
    assert.match(metrics.text, /^corral_tenant_backlog_jobs\{tenant="guest",model="stories260K"\} 0$/m);
    const counter = (tenant: string) =>
      Number(new RegExp(`^corral_tenant_virtual_tokens\\{tenant="${tenant}"\\} (\\S+)$`, "m").exec(metrics.text)?.[1]);
    assert.equal(counter("lab"), released[0]!.charged);
    assert.equal(counter("guest"), released[1]!.charged);
  });
});
