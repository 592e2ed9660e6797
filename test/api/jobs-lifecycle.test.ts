import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import {
  FairQueue,
  JobRecords,
  JobRecord,
  JobPayload,
  JobTransitions,
  RedisKeys,
  bullPriority,
  laneName,
  queuedJobRecord,
} from "@corral/shared";
import { TenantQueueCap } from "@corral/scheduler";
import { cleanupPrefix, startMonitor, testRedis, uniquePrefix } from "../support/redis.js";
import { errorOf, startApi, storiesJob, type ApiHarness } from "./harness.js";

/** Open mode is one tenant; these tests use keys so that each test has its own tenants. */
const keysFor = (...tenants: string[]) => {
  const keys = Object.fromEntries(tenants.map((t) => [t, `sk-${t}-${randomBytes(12).toString("hex")}`]));
  return {
    env: Object.entries(keys)
      .map(([t, k]) => `${t}:${k}`)
      .join(","),
    keys,
  };
};

describe("job lifecycle against real Redis", () => {
  const tenants = keysFor("alpha", "beta", "pager", "filter", "poller", "racer", "waiter", "quitter", "badwait");
  const key = tenants.keys;
  let api: ApiHarness;
  let records: JobRecords;
  before(async () => {
    api = await startApi({ env: { CORRAL_API_KEYS: tenants.env } });
    records = new JobRecords(api.redis, api.keys);
  });
  after(async () => {
    await api?.close();
  });

  const submit = async (tenant: string, extra: Record<string, unknown> = {}) => {
    const response = await api.request("POST", "/v1/jobs", { key: key[tenant], body: storiesJob(extra) });
    assert.equal(response.status, 202, response.text);
    return JobRecord.parse(response.json);
  };

  test("submit → 202 queued record, a held BullMQ job with the payload listed for fair claim, the lane registered", async () => {
    const response = await api.request("POST", "/v1/jobs", {
      key: key.alpha,
      body: storiesJob({ priority: 7, metadata: { run: "1" } }),
    });
    assert.equal(response.status, 202);
    const record = response.json;
    assert.match(record.id, /^job_[A-Za-z0-9_-]{24}$/);
    assert.equal(record.object, "job");
    assert.equal(record.status, "queued");
    assert.equal(record.tenant, "alpha");
    assert.equal(record.model, "stories260K");
    assert.equal(record.source, "native");
    assert.equal(record.priority, 7);
    assert.deepEqual(record.metadata, { run: "1" });
    assert.equal(response.headers.get("location"), `/v1/jobs/${record.id}`);

    const lane = laneName("stories260K");
    assert.equal(await api.redis.sismember(api.keys.lanes, lane), 1);
    // Held: in BullMQ's delayed set (due in a year), and listed in the tenant's fair-claim
    // order at its level (band and client priority), with its estimated cost.
    const due = Number(await api.redis.zscore(`${api.keys.prefix}:${lane}:delayed`, record.id)) / 0x1000;
    assert.ok(due - Date.now() > 300 * 24 * 3600 * 1000, "the job is held in the lane's delayed set");
    const [entry] = await api.redis.zrangebylex(api.keys.fairJobs(lane), "[alpha|", "+", "LIMIT", 0, 1);
    assert.match(
      entry!,
      new RegExp(
        `^alpha\\|${String(bullPriority("native", 7)).padStart(4, "0")}\\|${record.created_at}\\|\\d+\\|${record.id}$`,
      ),
    );
    const data = await api.redis.hget(`${api.keys.prefix}:${lane}:${record.id}`, "data");
    const payload = JobPayload.parse(JSON.parse(data!));
    assert.equal(payload.id, record.id);
    assert.equal(payload.kind, "completion");
    assert.equal(payload.prompt, "Once upon a time");
    assert.equal(payload.max_tokens, 16);
    assert.equal(payload.file, "stories260K.gguf");
    assert.ok(payload.requirement_bytes > 0);
    const opts = JSON.parse((await api.redis.hget(`${api.keys.prefix}:${lane}:${record.id}`, "opts"))!);
    assert.equal(opts.attempts, 3);
    // Its fair-claim cost: the prompt's tokens (counted with the model's vocabulary, at most
    // one a byte, plus a BOS) + max_tokens.
    assert.ok(
      payload.fair_cost! > 16 && payload.fair_cost! <= 16 + "Once upon a time".length + 1,
      `cost ${payload.fair_cost}`,
    );

    // The record as it was, and, while it is held, its estimated place: the lane's only job,
    // with nothing finished yet (no rate, so no estimated start).
    const got = await api.request("GET", `/v1/jobs/${record.id}`, { key: key.alpha });
    assert.equal(got.status, 200);
    assert.deepEqual(got.json, { ...record, queue_position: 1 });
  });

  test("a chat job gets kind chat", async () => {
    const response = await api.request("POST", "/v1/jobs", {
      key: key.alpha,
      body: { model: "stories260K", messages: [{ role: "user", content: "Hi" }] },
    });
    assert.equal(response.status, 202);
    const lane = laneName("stories260K");
    const data = await api.redis.hget(`${api.keys.prefix}:${lane}:${response.json.id}`, "data");
    assert.equal(JobPayload.parse(JSON.parse(data!)).kind, "chat");
  });

  test("cancel a waiting job → cancelled record, BullMQ job removed; cancel again → 409", async () => {
    const job = await submit("alpha");
    const lane = laneName("stories260K");
    assert.equal(await api.redis.exists(`${api.keys.prefix}:${lane}:${job.id}`), 1);

    const cancelled = await api.request("DELETE", `/v1/jobs/${job.id}`, { key: key.alpha });
    assert.equal(cancelled.status, 200, cancelled.text);
    assert.equal(cancelled.json.status, "cancelled");
    assert.equal(cancelled.json.error, null);
    assert.ok(cancelled.json.finished_at >= job.created_at);
    assert.equal(await api.redis.exists(`${api.keys.prefix}:${lane}:${job.id}`), 0);
    assert.equal(await api.redis.zscore(`${api.keys.prefix}:${lane}:delayed`, job.id), null);

    const got = await api.request("GET", `/v1/jobs/${job.id}`, { key: key.alpha });
    assert.equal(got.json.status, "cancelled");

    const again = await api.request("DELETE", `/v1/jobs/${job.id}`, { key: key.alpha });
    assert.equal(again.status, 409);
    assert.equal(errorOf(again).code, "job_finished");
  });

  test("cancel an active job → the id is published on the cancel channel and the record stays running", async () => {
    const job = await submit("alpha");
    const connection = new Redis(api.redisUrl, { maxRetriesPerRequest: null });
    const worker = new Worker<JobPayload>(laneName("stories260K"), null, {
      connection,
      prefix: api.keys.prefix,
      autorun: false,
    });
    const subscriber = new Redis(api.redisUrl);
    try {
      const token = "test-token";
      // Other tests' jobs may sit in the lane too: release (as a slot does) and take jobs until ours is active.
      for (;;) {
        await new FairQueue(api.redis, api.keys).release(laneName("stories260K"), 1);
        const next = await worker.getNextJob(token, { block: false });
        assert.ok(next, "our job should be in the lane");
        if (next.id === job.id) break;
      }
      await new JobTransitions(records).start(job, { startedAt: Date.now(), worker: "w", gpu: null, attempts: 1 });

      const published = new Promise<string>((resolve) =>
        subscriber.on("message", (_channel, id: string) => resolve(id)),
      );
      await subscriber.subscribe(api.keys.cancelChannel);
      const response = await api.request("DELETE", `/v1/jobs/${job.id}`, { key: key.alpha });
      assert.equal(response.status, 200, response.text);
      assert.equal(response.json.status, "running");
      assert.equal(await published, job.id);
      assert.equal((await records.get(job.id))?.status, "running");
    } finally {
      subscriber.disconnect();
      await worker.close(true);
      connection.disconnect();
    }
  });

  test("a job a worker claimed before its record says running is cancelled, and the worker cannot start it", async () => {
    const job = await submit("racer", { model: "llama-2-tiny-random" });
    const connection = new Redis(api.redisUrl, { maxRetriesPerRequest: null });
    const worker = new Worker<JobPayload>(laneName("llama-2-tiny-random"), null, {
      connection,
      prefix: api.keys.prefix,
      autorun: false,
    });
    try {
      await new FairQueue(api.redis, api.keys).release(laneName("llama-2-tiny-random"), 1);
      const next = await worker.getNextJob("racer-token", { block: false });
      assert.equal(next?.id, job.id);
      const response = await api.request("DELETE", `/v1/jobs/${job.id}`, { key: key.racer });
      assert.equal(response.status, 200);
      assert.equal(response.json.status, "cancelled");
      // What the worker does next: mark the record running. It must refuse, so the job is dropped.
      const running = await new JobTransitions(records).start(job, {
        startedAt: Date.now(),
        worker: "racer-worker",
        gpu: null,
        attempts: 1,
      });
      assert.equal(running, null);
      assert.equal((await records.get(job.id))?.status, "cancelled");
    } finally {
      await worker.close(true);
      connection.disconnect();
    }
  });

  test("?wait=1 on a queued job answers after about a second with status queued", async () => {
    const job = await submit("poller");
    const started = Date.now();
    const response = await api.request("GET", `/v1/jobs/${job.id}?wait=1`, { key: key.poller });
    const elapsed = Date.now() - started;
    assert.equal(response.status, 200);
    assert.equal(response.json.status, "queued");
    assert.ok(elapsed >= 900, `answered after ${elapsed} ms, before the wait was over`);
  });

  test("?wait=20 answers as soon as the record goes final", async () => {
    const job = await submit("poller");
    const started = Date.now();
    const polled = api.request("GET", `/v1/jobs/${job.id}?wait=20`, { key: key.poller });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const result = {
      text: " there was a cat",
      finish_reason: "stop" as const,
      usage: { prompt_tokens: 5, completion_tokens: 4 },
      timings: { queue_ms: 300, load_ms: 1, ttft_ms: 2, generation_ms: 3 },
    };
    const moves = new JobTransitions(records);
    await moves.start(job, { startedAt: Date.now(), worker: "w", gpu: null, attempts: 1 });
    const finished = await moves.succeed(job, Date.now(), result);
    assert.equal(finished?.status, "succeeded");
    const response = await polled;
    const elapsed = Date.now() - started;
    assert.equal(response.status, 200);
    assert.equal(response.json.status, "succeeded");
    assert.deepEqual(response.json.result, result);
    // Well short of the 20 s the client allowed: it was woken by the job event.
    assert.ok(elapsed < 15_000, `answered after ${elapsed} ms`);
  });

  test("a long poll on a job this scheduler created answers from the job event, without reading the record", async () => {
    await submit("poller"); // makes sure the job-events subscription is up
    await new Promise((resolve) => setTimeout(resolve, 100));
    const job = await submit("poller");
    const jobKey = api.keys.job(job.id);
    const reads: string[] = [];
    const { client, monitor } = await startMonitor(api.redisUrl);
    monitor.on("monitor", (_time: string, args: string[], source: string) => {
      if (source !== "lua" && args[0]?.toLowerCase() === "get" && args[1] === jobKey) reads.push(source);
    });
    try {
      const polled = api.request("GET", `/v1/jobs/${job.id}?wait=20`, { key: key.poller });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const moves = new JobTransitions(records);
      await moves.start(job, { startedAt: Date.now(), worker: "w", gpu: null, attempts: 1 });
      await moves.fail(job, Date.now(), { message: "x", code: "worker_error" });
      const response = await polled;
      const readsByScheduler = [...reads];
      assert.equal(response.status, 200);
      assert.equal(response.json.status, "failed");
      assert.deepEqual(response.json, await records.get(job.id));
      assert.deepEqual(
        readsByScheduler,
        [],
        "the scheduler read the record neither before waiting nor after the event",
      );
    } finally {
      monitor.disconnect();
      client.disconnect();
    }
  });

  test("?wait on a job that is already final answers at once", async () => {
    const job = await submit("poller");
    await api.request("DELETE", `/v1/jobs/${job.id}`, { key: key.poller });
    const response = await api.request("GET", `/v1/jobs/${job.id}?wait=30`, { key: key.poller });
    assert.equal(response.status, 200);
    assert.equal(response.json.status, "cancelled");
  });

  test("?wait on another tenant's job → 404", async () => {
    const job = await submit("poller");
    const response = await api.request("GET", `/v1/jobs/${job.id}?wait=5`, { key: key.beta });
    assert.equal(response.status, 404);
    assert.equal(errorOf(response).code, "job_not_found");
  });

  /** The tenant's one job, once its submit has queued it (the submit's own reply is still pending). */
  const onlyJobOf = async (tenant: string): Promise<JobRecord> => {
    for (let i = 0; i < 200; i++) {
      const listed = await api.request("GET", "/v1/jobs", { key: key[tenant] });
      if (listed.json.data.length > 0) {
        assert.equal(listed.json.data.length, 1);
        return JobRecord.parse(listed.json.data[0]);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`no job of ${tenant} was queued`);
  };

  test("POST ?wait=20 answers 200 with the final record as soon as the job goes final", async () => {
    const started = Date.now();
    const submitted = api.request("POST", "/v1/jobs?wait=20", { key: key.waiter, body: storiesJob() });
    const job = await onlyJobOf("waiter");
    assert.equal(job.status, "queued");
    const result = {
      text: " a dog",
      finish_reason: "length" as const,
      usage: { prompt_tokens: 5, completion_tokens: 2 },
      timings: { queue_ms: 50, load_ms: 0, ttft_ms: 2, generation_ms: 3 },
    };
    const moves = new JobTransitions(records);
    await moves.start(job, { startedAt: Date.now(), worker: "w", gpu: null, attempts: 1 });
    await moves.succeed(job, Date.now(), result);
    const response = await submitted;
    const elapsed = Date.now() - started;
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers.get("location"), `/v1/jobs/${job.id}`);
    assert.equal(response.json.id, job.id);
    assert.equal(response.json.status, "succeeded");
    assert.deepEqual(response.json.result, result);
    assert.deepEqual(response.json, await records.get(job.id));
    assert.ok(elapsed < 15_000, `answered after ${elapsed} ms, not when the job went final`);
  });

  test("POST ?wait=1 on a job nobody runs answers 202 with the queued record after about a second", async () => {
    const started = Date.now();
    const response = await api.request("POST", "/v1/jobs?wait=1", { key: key.waiter, body: storiesJob() });
    const elapsed = Date.now() - started;
    assert.equal(response.status, 202, response.text);
    assert.equal(response.json.status, "queued");
    assert.equal(response.headers.get("location"), `/v1/jobs/${response.json.id}`);
    assert.ok(elapsed >= 900, `answered after ${elapsed} ms, before the wait was over`);
    assert.equal((await records.get(response.json.id))?.status, "queued");
  });

  test("a client that leaves a POST ?wait keeps its job: it stays queued, not cancelled", async () => {
    const gone = new AbortController();
    const submitted = fetch(`${api.url}/v1/jobs?wait=30`, {
      method: "POST",
      headers: { authorization: `Bearer ${key.quitter}`, "content-type": "application/json" },
      body: JSON.stringify(storiesJob()),
      signal: gone.signal,
    });
    submitted.catch(() => undefined);
    const job = await onlyJobOf("quitter");
    gone.abort();
    await assert.rejects(submitted);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal((await records.get(job.id))?.status, "queued");
    const lane = laneName("stories260K");
    assert.notEqual(await api.redis.zscore(`${api.keys.prefix}:${lane}:delayed`, job.id), null);
  });

  test("POST with a bad ?wait → 400 naming wait, and nothing is queued", async () => {
    for (const wait of ["abc", "61", "-1", "1e3"]) {
      const response = await api.request("POST", `/v1/jobs?wait=${wait}`, { key: key.badwait, body: storiesJob() });
      assert.equal(response.status, 400, `wait=${wait}: ${response.text}`);
      assert.equal(errorOf(response).param, "wait");
    }
    const listed = await api.request("GET", "/v1/jobs", { key: key.badwait });
    assert.deepEqual(listed.json.data, []);
  });

  test("listing pages newest first with limit, after and has_more", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await submit("pager")).id);
      await new Promise((resolve) => setTimeout(resolve, 3)); // distinct created_at
    }
    const newestFirst = [...ids].reverse();
    const first = await api.request("GET", "/v1/jobs?limit=2", { key: key.pager });
    assert.equal(first.status, 200);
    assert.equal(first.json.object, "list");
    assert.deepEqual(
      first.json.data.map((r: JobRecord) => r.id),
      newestFirst.slice(0, 2),
    );
    assert.equal(first.json.has_more, true);
    assert.equal(first.json.first_id, newestFirst[0]);
    assert.equal(first.json.last_id, newestFirst[1]);

    const second = await api.request("GET", `/v1/jobs?limit=2&after=${first.json.last_id}`, { key: key.pager });
    assert.deepEqual(
      second.json.data.map((r: JobRecord) => r.id),
      newestFirst.slice(2, 4),
    );
    assert.equal(second.json.has_more, true);
    const third = await api.request("GET", `/v1/jobs?limit=2&after=${second.json.last_id}`, { key: key.pager });
    assert.deepEqual(
      third.json.data.map((r: JobRecord) => r.id),
      newestFirst.slice(4),
    );
    assert.equal(third.json.has_more, false);

    const all = await api.request("GET", "/v1/jobs", { key: key.pager });
    assert.equal(all.json.data.length, 5);
    assert.equal(all.json.has_more, false);
  });

  test("listing filters by status", async () => {
    const a = await submit("filter");
    const b = await submit("filter");
    await api.request("DELETE", `/v1/jobs/${a.id}`, { key: key.filter });
    const cancelled = await api.request("GET", "/v1/jobs?status=cancelled", { key: key.filter });
    assert.deepEqual(
      cancelled.json.data.map((r: JobRecord) => r.id),
      [a.id],
    );
    const queued = await api.request("GET", "/v1/jobs?status=queued", { key: key.filter });
    assert.deepEqual(
      queued.json.data.map((r: JobRecord) => r.id),
      [b.id],
    );
    const empty = await api.request("GET", "/v1/jobs?status=succeeded", { key: key.filter });
    assert.deepEqual(empty.json, { object: "list", data: [], has_more: false, first_id: null, last_id: null });
  });

  test("tenant isolation: beta cannot see, list, page from or cancel alpha's job", async () => {
    const job = await submit("alpha");
    const got = await api.request("GET", `/v1/jobs/${job.id}`, { key: key.beta });
    assert.equal(got.status, 404);
    const missing = await api.request("GET", "/v1/jobs/job_nosuchjobanywhere", { key: key.beta });
    assert.deepEqual(got.json, {
      error: { ...missing.json.error, message: missing.json.error.message.replace("job_nosuchjobanywhere", job.id) },
    });
    const listed = await api.request("GET", "/v1/jobs", { key: key.beta });
    assert.ok(!listed.json.data.some((r: JobRecord) => r.id === job.id));
    const paged = await api.request("GET", `/v1/jobs?after=${job.id}`, { key: key.beta });
    assert.deepEqual(paged.json.data, []);
    const cancelled = await api.request("DELETE", `/v1/jobs/${job.id}`, { key: key.beta });
    assert.equal(cancelled.status, 404);
    assert.equal((await records.get(job.id))?.status, "queued");
  });
});

describe("the per-tenant queued cap", () => {
  let api: ApiHarness;
  let records: JobRecords;
  before(async () => {
    api = await startApi({ env: { CORRAL_MAX_QUEUED_PER_TENANT: "2" } });
    records = new JobRecords(api.redis, api.keys);
  });
  after(async () => {
    await api?.close();
  });

  test("the third queued job gets 429; a place frees when a job starts or is cancelled", async () => {
    const submit = () => api.request("POST", "/v1/jobs", { body: storiesJob() });
    const first = await submit();
    const second = await submit();
    assert.equal(first.status, 202);
    assert.equal(second.status, 202);
    const third = await submit();
    assert.equal(third.status, 429);
    assert.equal(errorOf(third).code, "queue_full");
    assert.equal(errorOf(third).type, "rate_limit_error");
    // The refused job was added alongside its admission and taken back out: the lane holds
    // the two admitted jobs only.
    const held = `${api.keys.prefix}:${laneName("stories260K")}:delayed`;
    assert.deepEqual(
      (await api.redis.zrange(held, 0, -1)).sort(),
      [first.json.id, second.json.id].sort(),
      "only the admitted jobs are in the lane",
    );

    // Cancelling gives the place back at once.
    await api.request("DELETE", `/v1/jobs/${first.json.id}`);
    const fourth = await submit();
    assert.equal(fourth.status, 202, fourth.text);

    // A job that a worker started is no longer queued (pruned lazily, on the next full check).
    await new JobTransitions(records).start(
      { id: second.json.id },
      { startedAt: Date.now(), worker: "w", gpu: null, attempts: 1 },
    );
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the "found full" marker lasts 1 s
    const fifth = await submit();
    assert.equal(fifth.status, 202, fifth.text);
    const sixth = await submit();
    assert.equal(sixth.status, 429);
  });
});

describe("the queued cap at scale", () => {
  const prefix = uniquePrefix("cap");
  const keys = new RedisKeys(prefix);
  let redis: Redis;
  before(async () => {
    redis = new Redis((await testRedis()).url);
  });
  after(async () => {
    await cleanupPrefix((await testRedis()).url, prefix);
    redis.disconnect();
  });

  test("at the cap, the oldest entries whose jobs started are pruned a page at a time, not rescanned per submit", async () => {
    const max = 300;
    const cap = new TenantQueueCap({ redis, keys, max });
    const records = new JobRecords(redis, keys);
    const queued = (id: string, at: number): JobRecord =>
      queuedJobRecord({ id, tenant: "t", model: "m", source: "native", priority: 50, created_at: at });
    for (let i = 0; i < max; i++) assert.equal(await cap.admitAndCreate(queued(`j${i}`, 1000 + i), null), "admitted");
    assert.equal(await cap.admitAndCreate(queued("over", 5000), null), "full");
    // 200 of the oldest start running; the "found full" marker is cleared as a release would.
    for (let i = 0; i < 200; i++)
      await new JobTransitions(records).start(
        { id: `j${i}` },
        { startedAt: 2000, worker: "w", gpu: null, attempts: 1 },
      );
    await redis.del(keys.tenantQueuedFull("t"));
    const before = await redis.zcard(keys.tenantQueued("t"));
    assert.equal(await cap.admitAndCreate(queued("next", 5001), null), "admitted");
    // One admission pruned the first page (128 entries, all started), not just one entry.
    assert.equal(await redis.zcard(keys.tenantQueued("t")), before - 128 + 1);
    // The 72 started ones left in the set are pruned when the cap is reached again; the
    // 100 still queued are never dropped.
    for (let i = 0; i < 127; i++) assert.equal(await cap.admitAndCreate(queued(`k${i}`, 6000 + i), null), "admitted");
    assert.equal(await cap.admitAndCreate(queued("more", 7000), null), "admitted");
    for (let i = 200; i < max; i++) assert.equal(await redis.zscore(keys.tenantQueued("t"), `j${i}`), "" + (1000 + i));
  });
});
