import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { loadConfig as loadWorkerConfig, startWorker, type RunningWorker } from "@corral/worker";
import { JsonClient } from "../../bench/lib/http-client.js";
import { median } from "../../bench/lib/stats.js";
import { runScheduledJobs, type ScheduledJob } from "../../bench/lib/tenant-jobs.js";
import { startApi, type ApiHarness } from "../api/harness.js";
import { sharedModelsDir } from "../support/models.js";
import { jobsOf, waits } from "./metrics.js";
import { recordsRun } from "./records-run.js";

// Issue 15's scenario, small, on the real stack: a real scheduler and one CPU worker (one
// slot of 4 sequences) on stories260K, 64-token jobs, three tenants with equal shares. A
// queues a backlog at once; B trickles jobs in while it runs, C bursts. No figure here is
// compared with a time: B's and C's jobs are compared with A's, on the same machine.

const KEYS = {
  A: "fair-llama-tenant-a-0001",
  B: "fair-llama-tenant-b-0001",
  C: "fair-llama-tenant-c-0001",
  W: "fair-llama-warmup-00001",
};

describe("fair claim end to end: real scheduler, one CPU worker (1 slot × 4 sequences), stories260K", () => {
  let api: ApiHarness;
  let worker: RunningWorker;
  let clients: Map<string, JsonClient>;

  before(async () => {
    api = await startApi({
      env: {
        CORRAL_API_KEYS: Object.entries(KEYS)
          .map(([tenant, key]) => `${tenant}:${key}`)
          .join(","),
        CORRAL_SEQUENCES: "4",
        CORRAL_MAX_STREAMS_PER_TENANT: "1000",
      },
    });
    worker = await startWorker(
      loadWorkerConfig({
        CORRAL_REDIS_URL: api.redisUrl,
        CORRAL_PREFIX: api.prefix,
        CORRAL_MODELS_DIR: sharedModelsDir(),
        CORRAL_CPU: "true",
        CORRAL_CPU_SLOTS: "1",
        CORRAL_THREADS: "1",
        CORRAL_WORKER_ID: "fair-llama",
        CORRAL_WORKER_METRICS_PORT: "0",
        CORRAL_NVIDIA_SMI: "/nonexistent/nvidia-smi",
        CORRAL_LOG_LEVEL: "silent",
      }),
    );
    clients = new Map(
      Object.entries(KEYS).map(([tenant, key]) => [
        tenant,
        new JsonClient(api.url, 64, { authorization: `Bearer ${key}` }),
      ]),
    );
    // Loads the model and warms the slot, as another tenant.
    await runScheduledJobs(clients, jobs("W", [0, 0, 0, 0], 1000));
  });

  after(async () => {
    for (const client of clients?.values() ?? []) client.close();
    await worker?.close();
    await api?.close();
  });

  function jobs(tenant: string, times: readonly number[], offset: number): ScheduledJob[] {
    return times.map((at, i) => ({
      tenant,
      at,
      body: { model: "stories260K", prompt: `Once upon a time, story ${offset + i}:`, max_tokens: 64, temperature: 0 },
    }));
  }

  test("B's trickle and C's burst are not stuck behind A's backlog", async (t) => {
    // A: 80 jobs at t=0 (2-5 s of work on one slot); B: 8 over 1 s from 0.5 s; C: 8 at 1.5 s.
    const { records, accepted } = await runScheduledJobs(clients, [
      ...jobs("A", Array(80).fill(0), 0),
      ...jobs(
        "B",
        [0, 1, 2, 3, 4, 5, 6, 7].map((i) => 500 + i * 125),
        100,
      ),
      ...jobs("C", Array(8).fill(1500), 200),
    ]);
    const run = recordsRun(records, { slots: 1, sequences: 4 });
    const lastA = Math.max(...jobsOf(run, "A").map((job) => job.start));
    const [a, b, c] = ["A", "B", "C"].map((tenant) => median(waits(run, tenant)));
    t.diagnostic(
      `median wait A ${a!.toFixed(0)} ms, B ${b!.toFixed(0)} ms, C ${c!.toFixed(0)} ms; A's last job started at ${lastA.toFixed(0)} ms`,
    );
    assert.ok(
      jobsOf(run, "C").every((job) => job.arrival < lastA),
      "C arrived while A still had a backlog (else the test shows nothing)",
    );
    // Counted from each job's 202 (the scheduler has queued and held it by then), so the
    // submit's own latency on this machine is not counted against fair claim: at most one
    // A job per sequence (a claim already under way) may start after that.
    const t0 = Math.min(...records.map((r) => r.created_at));
    for (const light of ["B", "C"]) {
      const overtaken = jobsOf(run, light).map((job) => {
        const queued = accepted.get(job.id)! - t0;
        return jobsOf(run, "A").filter((a) => a.start > queued && a.start < job.start).length;
      });
      t.diagnostic(`A jobs started after each ${light} job was queued, before it started: ${overtaken.join(" ")}`);
      assert.ok(Math.max(...overtaken) <= 4, `${light}: ${overtaken.join(" ")}`);
    }
    assert.ok(b! < a! / 4, `B's median wait ${b} ms is not well under A's ${a} ms`);
  });
});
