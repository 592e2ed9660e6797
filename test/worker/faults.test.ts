import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { Redis } from "ioredis";
import { parseJobEvent } from "@corral/shared";
import { startWorker, type RunningWorker } from "@corral/worker";
import { repoRootDir } from "../support/models.js";
import { waitForExit } from "../support/processes.js";
import { TINY_RANDOM, createHarness, type Harness } from "./support/harness.js";

/** A job that generates for a good while: random weights never stop early. */
const LONG = { model: TINY_RANDOM, prompt: "Hello", max_tokens: 4000, temperature: 0 } as const;
/** Gives the random model room for LONG (the harness default context is 512). */
const MODELS_YAML = "models:\n  - file: llama-2-tiny-random.gguf\n    context_size: 4096\n";

describe("a slot killed mid-job", () => {
  let h: Harness;
  let worker: RunningWorker;

  before(async () => {
    h = await createHarness({ label: "sigkill", modelsYaml: MODELS_YAML });
    worker = await startWorker(h.config({ CORRAL_CPU: "true", CORRAL_CPU_SLOTS: "2" }), {
      logger: h.logger,
      restartInitialMs: 200,
    });
  });

  after(async () => {
    await worker?.close();
    await h?.close();
  });

  test("comes back at once (the supervisor puts it back), a slot completes it, and one result is recorded", async () => {
    const events = new Redis(h.url);
    const finals: string[] = [];
    await events.subscribe(h.keys.jobEventsChannel);
    events.on("message", (_channel: string, message: string) => finals.push(parseJobEvent(message).id));
    try {
      const record = await h.submit(LONG);
      const running = await h.waitFor(record.id, (r) => r.status === "running");
      const victim = worker.slots.find((slot) => slot.id === running.worker);
      assert.ok(victim?.pid, `the slot running the job (${running.worker}) has a process`);
      process.kill(victim.pid, "SIGKILL");

      const done = await h.waitFor(record.id, undefined, 120_000);
      assert.equal(done.status, "succeeded", JSON.stringify(done.error));
      assert.ok(done.result!.text.length > 0);
      assert.equal(done.result!.usage.completion_tokens, LONG.max_tokens);
      await h.jobIn(TINY_RANDOM, record.id, ["completed"]);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(finals.filter((id) => id === record.id).length, 1, "exactly one final record was published");
      assert.ok(
        worker.slots.find((slot) => slot.id === victim.id)!.restarts >= 1,
        "the supervisor restarted the killed slot",
      );
      const metrics = await (await fetch(worker.metricsUrl)).text();
      assert.match(metrics, new RegExp(`^corral_slot_restarts_total\\{slot="${victim.id}"\\} 1$`, "m"));
    } finally {
      events.disconnect();
    }
  });
});

describe("a job that kills its slot twice", () => {
  let h: Harness;
  let worker: RunningWorker;

  before(async () => {
    h = await createHarness({ label: "poison", modelsYaml: MODELS_YAML });
    worker = await startWorker(h.config({ CORRAL_CPU: "true", CORRAL_CPU_SLOTS: "2" }), {
      logger: h.logger,
      restartInitialMs: 200,
    });
  });

  after(async () => {
    await worker?.close();
    await h?.close();
  });

  // Each crash uses one attempt (CORRAL_JOB_ATTEMPTS is the one limit): two crashes use two.
  test("fails with job_stalled once its crashes used up its attempts, instead of staying running", async () => {
    const record = await h.submit({ ...LONG, attempts: 2 });
    for (let kill = 1; kill <= 2; kill++) {
      const running = await h.waitFor(record.id, (r) => r.status === "running" && r.started_at !== null, 60_000);
      const pid = worker.slots.find((slot) => slot.id === running.worker)?.pid;
      assert.ok(pid);
      process.kill(pid, "SIGKILL");
      // The record still says running; wait until the job is claimed again (new started_at).
      if (kill === 1)
        await h.waitFor(record.id, (r) => r.status !== "running" || r.started_at !== running.started_at, 60_000);
    }
    const done = await h.waitFor(record.id, undefined, 60_000);
    assert.equal(done.status, "failed");
    assert.equal(done.error?.code, "job_stalled");
    await h.jobIn(TINY_RANDOM, record.id, ["failed"]);
  });
});

/** Runs `main()` of @corral/worker in a child process, as `corral worker` would. */
function runMain(env: Record<string, string>) {
  const child = spawn(
    process.execPath,
    ["--input-type=module", "-e", 'import("@corral/worker").then((m) => m.main())'],
    {
      cwd: repoRootDir,
      env: { ...process.env, ...env },
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, exited };
}

function configEnv(h: Harness, extra: Record<string, string>): Record<string, string> {
  const c = h.config();
  return {
    CORRAL_REDIS_URL: c.redisUrl,
    CORRAL_PREFIX: c.prefix,
    CORRAL_MODELS_DIR: c.modelsDir,
    CORRAL_LOG_LEVEL: c.logLevel,
    CORRAL_THREADS: "1",
    CORRAL_WORKER_ID: "main-box",
    CORRAL_WORKER_METRICS_PORT: "0",
    CORRAL_LOCK_DURATION_MS: "2000",
    CORRAL_STALLED_INTERVAL_MS: "1000",
    CORRAL_HEARTBEAT_MS: "500",
    CORRAL_CPU: "true",
    ...extra,
  };
}

describe("SIGTERM", () => {
  let h: Harness;
  before(async () => {
    h = await createHarness({ label: "sigterm", modelsYaml: MODELS_YAML });
  });
  after(async () => {
    await h?.close();
  });

  test("lets the active job finish, then the worker exits 0", async () => {
    const { child, exited } = runMain(configEnv(h, { CORRAL_DRAIN_MS: "60s" }));
    const record = await h.submit({ ...LONG, max_tokens: 1500 });
    await h.waitFor(record.id, (r) => r.status === "running");
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
    const done = await h.records.get(record.id);
    assert.equal(done?.status, "succeeded");
    assert.equal(done?.result?.usage.completion_tokens, 1500);
    assert.equal(await h.redis.exists(h.keys.worker("main-box:cpu0")), 0, "heartbeat removed");
  });

  test("past CORRAL_DRAIN_MS releases the job to its lane without spending an attempt", async () => {
    const { child, exited } = runMain(configEnv(h, { CORRAL_DRAIN_MS: "300" }));
    const record = await h.submit({ ...LONG, attempts: 2 });
    await h.waitFor(record.id, (r) => r.status === "running");
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
    const released = await h.records.get(record.id);
    assert.equal(released?.status, "queued");
    assert.equal(released?.attempts, 0);
    assert.equal(released?.worker, null);
    const job = await h.jobIn(TINY_RANDOM, record.id, ["waiting", "prioritized"]);
    assert.equal(job.attemptsMade, 0);
  });

  test("slots drain and exit when the supervisor is killed", async () => {
    const { child, exited } = runMain(configEnv(h, { CORRAL_WORKER_ID: "orphan-box" }));
    let raw: string | null = null;
    for (let i = 0; i < 600 && raw === null; i++) {
      raw = await h.redis.get(h.keys.worker("orphan-box:cpu0"));
      if (raw === null) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(raw, "the slot heartbeats");
    const slotPid = (JSON.parse(raw) as { pid: number }).pid;
    child.kill("SIGKILL");
    await exited;
    assert.equal(await waitForExit(slotPid, 30_000), true, "the orphaned slot exited");
    assert.equal(await h.redis.exists(h.keys.worker("orphan-box:cpu0")), 0, "and removed its heartbeat");
  });

  test("bad configuration: prints the variable and exits 2", async () => {
    const { exited } = runMain(configEnv(h, { CORRAL_CPU_SLOTS: "many" }));
    assert.equal(await exited, 2);
  });
});
