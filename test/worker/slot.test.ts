import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { unlink } from "node:fs/promises";
import { join } from "node:path";
import {
  JobTransitions,
  WorkerState,
  laneName,
  readTokensUsed,
  FairQueue,
  utcDay,
  type JobRecord,
} from "@corral/shared";
import { Engine, Slot, type ModelEngine, type WorkerConfig } from "@corral/worker";
import { CPU0, STORIES, TINY_RANDOM, createHarness, readTokenStream, type Harness } from "./support/harness.js";

// One slot in this process, with the real engine (llama.cpp on the CPU) and real Redis.

const MODELS_YAML = "models:\n  - file: llama-2-tiny-random.gguf\n    context_size: 4096\n";
const LONG = { model: TINY_RANDOM, prompt: "Hello", max_tokens: 4000 } as const;

/** An Engine whose model loads go through `onLoad` first (count them, or throw). */
async function engineWith(h: Harness, onLoad: (modelPath: string) => void): Promise<Engine> {
  return Engine.create({
    gpu: false,
    threads: 1,
    logger: h.logger,
    loadModel: (llama, options) => {
      onLoad(options.modelPath);
      return llama.loadModel(options);
    },
  });
}

const modelOf = (path: string) => path.replace(/^.*[\\/]/, "").replace(/\.gguf$/, "");

async function until<T>(what: string, read: () => Promise<T> | T, ok: (value: T) => boolean, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("a slot", () => {
  let h: Harness;
  let slot: Slot | null = null;
  let engine: Engine | null = null;

  const start = async (config: WorkerConfig, options: { engine?: ModelEngine } = {}) => {
    slot = await Slot.start({ config, slot: CPU0, logger: h.logger, ...options });
    return slot;
  };

  before(async () => {
    h = await createHarness({ label: "slot", modelsYaml: MODELS_YAML });
  });
  afterEach(async () => {
    await slot?.close(0);
    slot = null;
    await engine?.close();
    engine = null;
    await h.redis.del(...(await h.redis.keys(`${h.keys.prefix}:*`)).filter((key) => !key.endsWith(":catalog")));
  });
  after(async () => {
    await h?.close();
  });

  test("heartbeats its state while running and removes it on close", async () => {
    const s = await start(h.config({ CORRAL_HEARTBEAT_MS: "200" }));
    const first = WorkerState.parse(JSON.parse((await h.redis.get(h.keys.worker(CPU0.id)))!));
    assert.equal(first.id, CPU0.id);
    assert.equal(first.host, "test-box");
    assert.equal(first.slot, "cpu0");
    assert.equal(first.mode, "cpu");
    assert.equal(first.pid, process.pid);
    assert.equal(first.state, "idle");
    assert.deepEqual(first.active_jobs, []);
    assert.ok(first.host_info && first.host_info.cpu_cores > 0);
    assert.ok(first.budget_free_bytes > 0 && first.budget_free_bytes <= first.budget_total_bytes);
    const ttl = await h.redis.pttl(h.keys.worker(CPU0.id));
    assert.ok(ttl > 0 && ttl <= 600, `TTL of three intervals, got ${ttl}`);
    assert.deepEqual(await h.redis.smembers(h.keys.workers), [CPU0.id]);

    const record = await h.submit({ model: STORIES, prompt: "Once upon a time", max_tokens: 16 });
    await h.waitFor(record.id);
    const later = await until(
      "a heartbeat listing the loaded model",
      async () => WorkerState.parse(JSON.parse((await h.redis.get(h.keys.worker(CPU0.id)))!)),
      (state) => state.loaded_models.length === 1,
    );
    assert.equal(later.loaded_models[0]!.model, STORIES);
    assert.equal(later.loaded_models[0]!.sequences, 1);
    assert.ok(later.updated_at > first.updated_at);

    await s.close();
    assert.equal(await h.redis.exists(h.keys.worker(CPU0.id)), 0);
    assert.deepEqual(await h.redis.smembers(h.keys.workers), []);
  });

  test("settles the fair-claim charge of the job's tenant with the tokens it used, and counts them for today (budgets), written by close at the latest", async () => {
    const s = await start(h.config());
    const record = await h.submit({ model: STORIES, prompt: "Once upon a time", max_tokens: 32 });
    const done = await h.waitFor(record.id);
    assert.equal(done.status, "succeeded");
    await s.close();
    slot = null;
    const { prompt_tokens, completion_tokens } = done.result!.usage;
    assert.ok(completion_tokens > 0);
    // Charged its estimate (max_tokens 32, the harness counts no prompt) at release, then
    // settled with what it used: the counter holds exactly the tokens used.
    const counters = await new FairQueue(h.redis, h.keys).counters();
    assert.deepEqual([...counters], [["test", prompt_tokens + completion_tokens]]);
    const tokens = await readTokensUsed(h.redis, h.keys, { now: Date.now() });
    assert.deepEqual([...tokens], [["test", prompt_tokens + completion_tokens]]);
    const ttl = await h.redis.ttl(h.keys.tokensUsed(utcDay(Date.now())));
    assert.ok(ttl > 24 * 3600 && ttl <= 2 * 24 * 3600, `the day's count expires in two days (ttl ${ttl} s)`);
  });

  test("drains the loaded model's lane before loading the next model", async () => {
    const loads: string[] = [];
    engine = await engineWith(h, (path) => loads.push(modelOf(path)));
    const stories: JobRecord[] = [];
    const random: JobRecord[] = [];
    for (let i = 0; i < 5; i++) stories.push(await h.submit({ model: STORIES, prompt: `Once ${i}`, max_tokens: 100 }));
    for (let i = 0; i < 3; i++) random.push(await h.submit({ model: TINY_RANDOM, prompt: `Hi ${i}`, max_tokens: 32 }));
    // More jobs for the loaded model arrive while it runs: it keeps the slot.
    await start(h.config(), { engine });
    await h.waitFor(stories[0]!.id, (r) => r.status !== "queued");
    for (let i = 0; i < 3; i++) stories.push(await h.submit({ model: STORIES, prompt: `Later ${i}`, max_tokens: 100 }));

    const done = async (list: typeof stories) => Promise.all(list.map((r) => h.waitFor(r.id)));
    const [a, b] = [await done(stories), await done(random)];
    assert.ok([...a, ...b].every((r) => r.status === "succeeded"));
    assert.deepEqual(loads, [STORIES, TINY_RANDOM], "each model loaded once, the older lane first");
    const lastStories = Math.max(...a.map((r) => r.started_at!));
    const firstRandom = Math.min(...b.map((r) => r.started_at!));
    assert.ok(lastStories <= firstRandom, "every stories job started before the first random-model job");
    assert.equal(a[0]!.result!.timings.load_ms > 0, true, "the first job waited for the load");
    assert.equal(a.at(-1)!.result!.timings.load_ms, 0, "later jobs found the model loaded");
    const loadCount = (await slot!.metrics.modelLoad.get()).values.find(
      (v) => v.metricName === "corral_model_load_seconds_count" && v.labels.model === STORIES,
    );
    assert.equal(loadCount?.value, 1);
  });

  test("a head job waiting past CORRAL_SWAP_AFTER_MS gets its model before the loaded lane drains", async () => {
    const stories: JobRecord[] = [];
    for (let i = 0; i < 12; i++) stories.push(await h.submit({ model: STORIES, prompt: `Once ${i}`, max_tokens: 200 }));
    const random = await h.submit({ model: TINY_RANDOM, prompt: "Hi", max_tokens: 16 });
    await start(h.config({ CORRAL_SWAP_AFTER_MS: "300" }));
    const r = await h.waitFor(random.id);
    const a = await Promise.all(stories.map((s) => h.waitFor(s.id)));
    assert.equal(r.status, "succeeded");
    assert.ok(
      r.started_at! < Math.max(...a.map((s) => s.started_at!)),
      "the starved lane ran before the stories backlog was done",
    );
  });

  test("unloads a model left idle past CORRAL_KEEP_ALIVE", async () => {
    const s = await start(h.config({ CORRAL_KEEP_ALIVE: "300", CORRAL_HEARTBEAT_MS: "100" }));
    const record = await h.submit({ model: STORIES, prompt: "Once upon a time", max_tokens: 8 });
    await h.waitFor(record.id);
    assert.match(
      await s.metrics.registry.metrics(),
      /^corral_model_loaded\{model="stories260K",slot="test-box:cpu0"\} 1$/m,
    );
    // A job can finish between two heartbeats, so the heartbeat alone may not have shown the
    // model yet: wait for the metric and the heartbeat to agree that it is gone.
    await until(
      "the model to be unloaded",
      async () => ({
        models: WorkerState.parse(JSON.parse((await h.redis.get(h.keys.worker(CPU0.id)))!)).loaded_models,
        metrics: await s.metrics.registry.metrics(),
      }),
      ({ models, metrics }) => models.length === 0 && !/^corral_model_loaded\{/m.test(metrics),
    );
  });

  test("cancels a running job: partial text, status cancelled, stream ended", async () => {
    await start(h.config());
    const record = await h.submit(LONG);
    await h.waitFor(record.id, (r) => r.status === "running");
    await until(
      "some streamed text",
      () => readTokenStream(h.redis, h.keys, record.id),
      (s) => s.text.length > 0,
    );
    await h.redis.publish(h.keys.cancelChannel, record.id);
    const done = await h.waitFor(record.id);
    assert.equal(done.status, "cancelled");
    assert.equal(done.result?.finish_reason, "cancelled");
    assert.ok(done.result!.text.length > 0, "keeps the partial text");
    assert.ok(done.result!.usage.completion_tokens < LONG.max_tokens);
    const stream = await until(
      "the end entry",
      () => readTokenStream(h.redis, h.keys, record.id),
      (s) => s.end !== null,
    );
    assert.equal(stream.end?.status, "cancelled");
    assert.equal(stream.text, done.result!.text);
    await h.jobIn(TINY_RANDOM, record.id, ["completed"]);
  });

  test("drops a job cancelled while it waited, without running it", async () => {
    await start(h.config());
    const blocker = await h.submit(LONG);
    const waiting = await h.submit({ model: TINY_RANDOM, prompt: "never", max_tokens: 8 });
    await h.waitFor(blocker.id, (r) => r.status === "running");
    // The scheduler's cancel of a queued job whose lane entry it could not remove.
    await new JobTransitions(h.records).cancelQueued(waiting, Date.now());
    await h.redis.publish(h.keys.cancelChannel, blocker.id);
    const job = await until(
      "the dropped job to complete in BullMQ",
      async () => (await h.queue(TINY_RANDOM).getJob(waiting.id))!,
      (j) => j.finishedOn !== undefined,
    );
    assert.deepEqual(job.returnvalue, { dropped: true });
    const record = await h.records.get(waiting.id);
    assert.equal(record?.status, "cancelled");
    assert.equal(record?.worker, null);
    assert.equal(record?.result, null);
    assert.equal(await h.redis.exists(h.keys.tokens(waiting.id)), 0, "it never streamed");
  });

  test("out of memory while loading: the job goes back unspent, the model is skipped for the cooldown", async () => {
    const loads: string[] = [];
    engine = await engineWith(h, (path) => {
      loads.push(modelOf(path));
      if (modelOf(path) === STORIES)
        throw new Error(
          "ggml_backend_cuda_buffer_type_alloc_buffer: allocating 20480.00 MiB on device 0: cudaMalloc failed: out of memory",
        );
    });
    const s = await start(h.config({ CORRAL_OOM_COOLDOWN_MS: "10m" }), { engine });
    const record = await h.submit({ model: STORIES, prompt: "Once upon a time", max_tokens: 8, attempts: 2 });
    await until(
      "an OOM release",
      async () => (await s.metrics.oomReleases.get()).values.find((v) => v.labels.model === STORIES)?.value ?? 0,
      (v) => v === 1,
    );
    const released = await h.waitFor(record.id, (r) => r.status === "queued" && r.worker === null);
    assert.equal(released.attempts, 0);
    assert.equal(released.error, null, "not a failure");
    const job = await h.jobIn(STORIES, record.id, ["waiting", "prioritized"]);
    assert.equal(job.attemptsMade, 0, "no attempt spent");

    // The slot stays up and serves models that fit, and does not retry the one that did not.
    const other = await h.submit({ model: TINY_RANDOM, prompt: "Hi", max_tokens: 8 });
    assert.equal((await h.waitFor(other.id)).status, "succeeded");
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(loads, [STORIES, TINY_RANDOM]);
    assert.equal((await h.records.get(record.id))?.status, "queued");
    const metrics = await s.metrics.registry.metrics();
    assert.match(metrics, /^corral_oom_releases_total\{model="stories260K"\} 1$/m);
  });

  test("a prompt longer than the context fails at once, with the token counts, without retries", async () => {
    await start(h.config());
    const record = await h.submit({
      model: STORIES,
      prompt: "Once upon a time ".repeat(300),
      max_tokens: 8,
      attempts: 3,
    });
    const done = await h.waitFor(record.id);
    assert.equal(done.status, "failed");
    assert.equal(done.error?.code, "context_length_exceeded");
    assert.match(done.error!.message, /\d+ tokens/);
    const job = await h.jobIn(STORIES, record.id, ["failed"]);
    assert.equal(job.attemptsMade, 1, "UnrecoverableError: no retry");
  });

  test("other errors are retried by BullMQ; the record shows the error until an attempt succeeds", async () => {
    const real = await Engine.create({ gpu: false, threads: 1, logger: h.logger });
    engine = real;
    let failures = 1;
    const flaky: ModelEngine = {
      async load(options) {
        const model = await real.load(options);
        return {
          loadMs: model.loadMs,
          dispose: () => model.dispose(),
          run: (job, run) => (failures-- > 0 ? Promise.reject(new Error("transient trouble")) : model.run(job, run)),
        };
      },
      close: () => real.close(),
    };
    await start(h.config(), { engine: flaky });
    const record = await h.submit({ model: STORIES, prompt: "Once upon a time", max_tokens: 8, attempts: 3 });
    const retried = await h.waitFor(record.id, (r) => r.error !== null || r.status === "succeeded");
    assert.equal(retried.error?.message, "transient trouble");
    const done = await h.waitFor(record.id);
    assert.equal(done.status, "succeeded");
    assert.equal(done.attempts, 2);
    assert.equal(done.error, null);
    assert.match(
      await slot!.metrics.registry.metrics(),
      /corral_jobs_completed_total\{model="stories260K",status="retried"\} 1/,
    );
  });

  test("a missing model file fails the job at once, naming the file", async () => {
    await start(h.config());
    await unlink(join(h.modelsDir, `${TINY_RANDOM}.gguf`));
    const record = await h.submit({ model: TINY_RANDOM, prompt: "Hi", max_tokens: 8, attempts: 3 });
    const done = await h.waitFor(record.id);
    assert.equal(done.status, "failed");
    assert.match(done.error!.message, /llama-2-tiny-random\.gguf/);
    const job = await h.jobIn(TINY_RANDOM, record.id, ["failed"]);
    assert.equal(job.attemptsMade, 1);
    assert.ok((await h.redis.smembers(h.keys.lanes)).includes(laneName(TINY_RANDOM)));
  });
});
