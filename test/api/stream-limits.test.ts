import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { errorOf, startApi, storiesJob, type ApiHarness } from "./harness.js";

const LAB_KEY = "sk-lab-0123456789abcdef";
const GUEST_KEY = "sk-guest-0123456789abcdef";

describe("per-tenant limit on open streams and long polls (CORRAL_MAX_STREAMS_PER_TENANT)", () => {
  let api: ApiHarness;
  const held: AbortController[] = [];

  before(async () => {
    // No worker: queued jobs stay queued, so long polls stay open.
    api = await startApi({
      env: { CORRAL_API_KEYS: `lab:${LAB_KEY},guest:${GUEST_KEY}`, CORRAL_MAX_STREAMS_PER_TENANT: "2" },
    });
  });
  after(async () => {
    for (const controller of held) controller.abort();
    await api?.close();
  });

  /** A long poll on `id` that stays open until aborted; resolves when it ends (aborted, or answered). */
  const holdLongPoll = (id: string, key: string) => {
    const controller = new AbortController();
    held.push(controller);
    const done = fetch(`${api.url}/v1/jobs/${id}?wait=60`, {
      headers: { authorization: `Bearer ${key}` },
      signal: controller.signal,
    }).then(
      (response) => response.status,
      () => null,
    );
    return { controller, done };
  };

  test("a tenant holding its limit gets 429 with Retry-After on more long polls and streams; others and a freed place pass", async () => {
    const submitted = await api.request("POST", "/v1/jobs", { key: LAB_KEY, body: storiesJob() });
    assert.equal(submitted.status, 202, submitted.text);
    const id = submitted.json.id as string;
    const first = holdLongPoll(id, LAB_KEY);
    const second = holdLongPoll(id, LAB_KEY);
    // Both polls are registered once a third is refused (they may take a moment to arrive).
    let refused = await api.request("GET", `/v1/jobs/${id}?wait=1`, { key: LAB_KEY });
    for (let i = 0; i < 50 && refused.status !== 429; i++) {
      refused = await api.request("GET", `/v1/jobs/${id}?wait=1`, { key: LAB_KEY });
    }
    assert.equal(refused.status, 429, refused.text);
    assert.equal(errorOf(refused).code, "too_many_streams");
    assert.match(errorOf(refused).message, /CORRAL_MAX_STREAMS_PER_TENANT/);
    assert.equal(refused.headers.get("retry-after"), "1");

    // Submit-and-wait is refused before anything is queued.
    const before = await api.request("GET", "/v1/jobs?limit=100", { key: LAB_KEY });
    const submitWait = await api.request("POST", "/v1/jobs?wait=5", { key: LAB_KEY, body: storiesJob() });
    assert.equal(submitWait.status, 429, submitWait.text);
    const afterList = await api.request("GET", "/v1/jobs?limit=100", { key: LAB_KEY });
    assert.equal(afterList.json.data.length, before.json.data.length, "no job queued by the refused request");

    // A streaming completion is a stream too.
    const stream = await api.request("POST", "/v1/chat/completions", {
      key: LAB_KEY,
      body: { model: "stories260K", messages: [{ role: "user", content: "hi" }], stream: true, max_tokens: 4 },
    });
    assert.equal(stream.status, 429, stream.text);
    assert.equal(errorOf(stream).code, "too_many_streams");

    // The limit is per tenant.
    const guestJob = await api.request("POST", "/v1/jobs", { key: GUEST_KEY, body: storiesJob() });
    const guestPoll = await api.request("GET", `/v1/jobs/${guestJob.json.id}?wait=0.1`, { key: GUEST_KEY });
    assert.equal(guestPoll.status, 200, guestPoll.text);

    // A client that leaves gives its place back.
    first.controller.abort();
    await first.done;
    let freed = await api.request("GET", `/v1/jobs/${id}?wait=0.1`, { key: LAB_KEY });
    for (let i = 0; i < 50 && freed.status === 429; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      freed = await api.request("GET", `/v1/jobs/${id}?wait=0.1`, { key: LAB_KEY });
    }
    assert.equal(freed.status, 200, freed.text);
    second.controller.abort();
    await second.done;
  });
});
