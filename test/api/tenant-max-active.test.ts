import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Queue } from "bullmq";
import { laneName, type JobPayload } from "@corral/shared";
import { startApi, storiesJob, type ApiHarness } from "./harness.js";

const LAB_KEY = "sk-lab-0123456789abcdef";
const GUEST_KEY = "sk-guest-0123456789abcdef";

describe("CORRAL_TENANT_MAX_ACTIVE: the scheduler stamps each job with its tenant's limit", () => {
  let api: ApiHarness;
  let lane: Queue<JobPayload>;

  before(async () => {
    api = await startApi({
      env: {
        CORRAL_API_KEYS: `lab:${LAB_KEY},guest:${GUEST_KEY}`,
        CORRAL_TENANT_MAX_ACTIVE: "lab:8,*:2",
      },
    });
    lane = new Queue(laneName("stories260K"), { connection: api.redis, prefix: api.keys.prefix });
  });
  after(async () => {
    await lane?.close();
    await api?.close();
  });

  const maxActiveOf = async (key: string) => {
    const response = await api.request("POST", "/v1/jobs", { key, body: storiesJob() });
    assert.equal(response.status, 202, response.text);
    return (await lane.getJob(response.json.id))!.data.max_active;
  };

  test("a named tenant gets its own limit, the others `*`", async () => {
    assert.equal(await maxActiveOf(LAB_KEY), 8);
    assert.equal(await maxActiveOf(GUEST_KEY), 2);
  });

  test("without the variable a job carries no limit", async () => {
    const open = await startApi();
    const queue = new Queue<JobPayload>(laneName("stories260K"), { connection: open.redis, prefix: open.keys.prefix });
    try {
      const response = await open.request("POST", "/v1/jobs", { body: storiesJob() });
      assert.equal(response.status, 202, response.text);
      const job = await queue.getJob(response.json.id);
      assert.equal("max_active" in job!.data, false);
    } finally {
      await queue.close();
      await open.close();
    }
  });
});
