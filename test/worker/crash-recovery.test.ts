import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import { FairQueue, WorkerState, laneName, parseJobEvent, type JobPayload, type JobRecord } from "@corral/shared";
import { MAX_STALLED_COUNT, startWorker, type RunningWorker } from "@corral/worker";
import { TINY_RANDOM, createHarness, readTokenStream, type Harness } from "./support/harness.js";

/** A job that generates for a good while: random weights never stop early. */
const LONG = { model: TINY_RANDOM, prompt: "Hello", max_tokens: 4000, temperature: 0 } as const;
/** Room for LONG, and two jobs at once on one slot. */
const MODELS_YAML = "models:\n  - file: llama-2-tiny-random.gguf\n    context_size: 4096\n    sequences: 2\n";
/** BullMQ's and Corral's default lock duration: recovery must not wait for it. */
const DEFAULT_LOCK_MS = 30_000;

/** Collects the ids published on `job-events` (one per final record). */
async function finalEvents(h: Harness): Promise<{ ids: string[]; close(): void }> {
  const events = new Redis(h.url);
  const ids: string[] = [];
  await events.subscribe(h.keys.jobEventsChannel);
  events.on("message", (_channel: string, message: string) => ids.push(parseJobEvent(message).id));
  return { ids, close: () => events.disconnect() };
}

describe("a slot SIGKILLed with the default lock duration", () => {
  let h: Harness;
  let worker: RunningWorker;
  let events: Awaited<ReturnType<typeof finalEvents>>;

  before(async () => {
    h = await createHarness({ label: "recover", modelsYaml: MODELS_YAML });
    events = await finalEvents(h);
    worker = await startWorker(
      h.config({
        CORRAL_CPU: "true",
        CORRAL_CPU_SLOTS: "1",
        CORRAL_LOCK_DURATION_MS: String(DEFAULT_LOCK_MS),
        CORRAL_STALLED_INTERVAL_MS: String(DEFAULT_LOCK_MS),
      }),
      { logger: h.logger, restartInitialMs: 200, restartMaxMs: 400 },
    );
  });

  after(async () => {
    events?.close();
    await worker?.close();
    await h?.close();
  });

  /** Kills the one slot while it runs `ids` (all started), and returns when it was killed. */
  const killSlot = async (ids: string[]): Promise<{ killedAt: number; running: JobRecord[] }> => {
    const running = await Promise.all(
      ids.map((id) => h.waitFor(id, (r) => r.status === "running" && r.started_at !== null, 60_000)),
    );
    const pid = worker.slots[0]?.pid;
    assert.ok(pid, "the slot has a process");
    const killedAt = Date.now();
    process.kill(pid, "SIGKILL");
    return { killedAt, running };
  };

  /** Waits until the job started again after `killedAt`, and returns that record. */
  const rerun = (id: string, killedAt: number) =>
    h.waitFor(id, (r) => r.started_at !== null && r.started_at > killedAt, 60_000);

  test("its jobs start again on the restarted slot long before the lock would expire, and succeed once", async () => {
    const a = await h.submit(LONG);
    const b = await h.submit(LONG);
    const { killedAt, running } = await killSlot([a.id, b.id]);
    const victim = running[0]!.worker;
    assert.deepEqual(
      running.map((r) => r.attempts),
      [1, 1],
    );

    for (const id of [a.id, b.id]) {
      const again = await rerun(id, killedAt);
      assert.ok(
        again.started_at! - killedAt < DEFAULT_LOCK_MS,
        `the rerun started ${again.started_at! - killedAt} ms after the kill, before the ${DEFAULT_LOCK_MS} ms lock ran out`,
      );
      assert.equal(again.worker, victim, "on the restarted slot");
      assert.equal(again.attempts, 2, "the crash used one attempt");
    }
    assert.ok(worker.slots[0]!.restarts >= 1);
    const metrics = await (await fetch(worker.metricsUrl)).text();
    assert.match(metrics, new RegExp(`^corral_jobs_recovered_total\\{slot="${victim}"\\} 2$`, "m"));

    for (const id of [a.id, b.id]) {
      const done = await h.waitFor(id, undefined, 120_000);
      assert.equal(done.status, "succeeded", JSON.stringify(done.error));
      assert.equal(done.result!.usage.completion_tokens, LONG.max_tokens);
      const job = await h.jobIn(TINY_RANDOM, id, ["completed"]);
      // One attempt for the crash, one for the run that completed.
      assert.equal(job.attemptsMade, 2);
    }
    await new Promise((r) => setTimeout(r, 500));
    for (const id of [a.id, b.id])
      assert.equal(events.ids.filter((e) => e === id).length, 1, `exactly one final record of ${id} was published`);
  });

  test("a job caught by two crashes with attempts 3 still succeeds", async () => {
    const record = await h.submit({ ...LONG, attempts: 3 });
    let { killedAt } = await killSlot([record.id]);
    await rerun(record.id, killedAt);
    ({ killedAt } = await killSlot([record.id]));
    const third = await rerun(record.id, killedAt);
    assert.equal(third.attempts, 3);

    const done = await h.waitFor(record.id, undefined, 120_000);
    assert.equal(done.status, "succeeded", JSON.stringify(done.error));
    assert.equal(done.result!.usage.completion_tokens, LONG.max_tokens);
    assert.equal((await h.jobIn(TINY_RANDOM, record.id, ["completed"])).attemptsMade, 3);
  });

  test("with attempts 1, a crash uses the one attempt: the job fails with job_stalled", async () => {
    const record = await h.submit({ ...LONG, attempts: 1 });
    const { killedAt } = await killSlot([record.id]);

    const done = await h.waitFor(record.id, undefined, 60_000);
    assert.equal(done.status, "failed");
    assert.equal(done.error?.code, "job_stalled");
    assert.ok(done.finished_at! - killedAt < DEFAULT_LOCK_MS, "failed without waiting for the lock");
    assert.equal(done.result, null);
    await h.jobIn(TINY_RANDOM, record.id, ["failed"]);
  });
});

describe("a slot whose job lock is taken away", () => {
  let h: Harness;
  let worker: RunningWorker;

  before(async () => {
    h = await createHarness({ label: "lock-lost", modelsYaml: MODELS_YAML });
    // The harness's short lock (2 s, renewed every second) finds the lost lock quickly.
    worker = await startWorker(h.config({ CORRAL_CPU: "true", CORRAL_CPU_SLOTS: "1" }), { logger: h.logger });
  });

  after(async () => {
    await worker?.close();
    await h?.close();
  });

  test("aborts the job's generation and writes no result; the job then runs once elsewhere", async () => {
    const events = await finalEvents(h);
    try {
      const record = await h.submit({ ...LONG, max_tokens: 3000 });
      const running = await h.waitFor(record.id, (r) => r.status === "running");
      const lockKey = `${h.queue(TINY_RANDOM).toKey(record.id)}:lock`;
      // Another worker holds the lock now (as after a stall and a claim elsewhere).
      await h.redis.set(lockKey, "another-worker:1:1", "PX", 60_000);

      const heartbeat = h.keys.worker(running.worker!);
      const deadline = Date.now() + 15_000;
      for (;;) {
        const raw = await h.redis.get(heartbeat);
        const state = raw === null ? null : WorkerState.parse(JSON.parse(raw));
        if (state && !state.active_jobs.includes(record.id)) break;
        assert.ok(Date.now() < deadline, "the slot stopped running the job");
        await new Promise((r) => setTimeout(r, 100));
      }
      const after = await h.records.get(record.id);
      assert.equal(after?.status, "running", "the aborted run wrote no final record");
      assert.equal(after?.result, null);
      assert.equal((await readTokenStream(h.redis, h.keys, record.id)).end, null, "nor the stream's end");
      assert.equal(await h.redis.get(lockKey), "another-worker:1:1", "nor touched the other worker's lock");
      assert.equal(events.ids.length, 0);

      // The other worker goes away: BullMQ's stalled check brings the job back, and it runs once.
      await h.redis.del(lockKey);
      const done = await h.waitFor(record.id, undefined, 120_000);
      assert.equal(done.status, "succeeded", JSON.stringify(done.error));
      assert.equal(done.result!.usage.completion_tokens, 3000);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(events.ids.filter((id) => id === record.id).length, 1);
    } finally {
      events.close();
    }
  });
});

describe("a host that dies whole (no supervisor left): BullMQ's stalled check", () => {
  let h: Harness;
  let worker: RunningWorker | undefined;
  let deadHost: Worker<JobPayload>;

  before(async () => {
    h = await createHarness({ label: "host-dies" });
    // Claims like a slot of a host that then dies: its locks are never renewed. Its stalled
    // checker (as any other host's would) puts the jobs back once the locks ran out.
    deadHost = new Worker<JobPayload>(laneName(TINY_RANDOM), null, {
      connection: h.redis,
      prefix: h.keys.prefix,
      autorun: false,
      lockDuration: 500,
      stalledInterval: 500,
      maxStalledCount: MAX_STALLED_COUNT,
    });
  });

  after(async () => {
    await deadHost?.close(true);
    await worker?.close();
    await h?.close();
  });

  test("each stall uses one attempt: attempts 3 survive two stalls, attempts 2 fail with job_stalled", async () => {
    const survives = await h.submit({ model: TINY_RANDOM, prompt: "Hello", max_tokens: 16, attempts: 3 });
    const exhausted = await h.submit({ model: TINY_RANDOM, prompt: "Hello", max_tokens: 16, attempts: 2 });
    await deadHost.startStalledCheckTimer();
    // Queued jobs are held for fair claim: released (as a slot does before it takes), the
    // first time only; the stalled check puts them back in the wait list.
    assert.equal((await new FairQueue(h.redis, h.keys).release(laneName(TINY_RANDOM), 2)).length, 2);
    for (let stall = 1; stall <= 2; stall++) {
      for (let n = 1; n <= 2; n++)
        assert.ok(await deadHost.getNextJob(`dead-host:cpu0:1:${stall}${n}`, { block: false }));
      for (const id of [survives.id, exhausted.id]) await h.jobIn(TINY_RANDOM, id, ["waiting", "prioritized"], 15_000);
    }
    assert.equal((await h.queue(TINY_RANDOM).getJob(survives.id))?.stalledCounter, 2);

    worker = await startWorker(h.config({ CORRAL_CPU: "true", CORRAL_CPU_SLOTS: "1" }), { logger: h.logger });
    const done = await h.waitFor(survives.id);
    assert.equal(done.status, "succeeded", JSON.stringify(done.error));
    const failed = await h.waitFor(exhausted.id);
    assert.equal(failed.status, "failed");
    assert.equal(failed.error?.code, "job_stalled");
  });
});
