import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRootDir, sharedModelsDir } from "../support/models.js";

// CI runs the cluster simulator only at its quick size (4 slots × 2 models, about 15 s):
// the shape of its report and the facts that do not depend on timing. No figure is
// compared with a time or a rate.

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "bench/run.ts", ...args], {
      cwd: repoRootDir,
      env: { ...process.env, CORRAL_MODELS_DIR: sharedModelsDir(), CORRAL_BENCH_QUICK: "", CORRAL_BENCH_SIM_SIZES: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

const isNumber = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value);

type Run = Record<string, unknown>;

function assertEveryJobOnce(label: string, run: Run | null | undefined): void {
  assert.ok(run, `${label} ran`);
  assert.ok(isNumber(run.submitted) && run.submitted > 0, `${label} submitted jobs`);
  assert.equal(run.missing, 0, `${label}: every submitted job finished`);
  assert.equal(run.completed_twice, 0, `${label}: no job completed twice`);
  assert.equal(run.completed_once, run.submitted, `${label}: every job completed exactly once`);
  for (const key of ["achieved_per_s", "dispatch_p50_ms", "dispatch_p99_ms", "idle_while_waiting_ratio"])
    assert.ok(isNumber(run[key]), `${label}.${key} is a number`);
}

describe("cluster simulator, quick run", () => {
  let dir = "";
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("runs every submitted job exactly once on the simulated slots and on raw BullMQ, and reports the scale table", async () => {
    dir = await mkdtemp(join(tmpdir(), "corral-sim-smoke-"));
    const out = join(dir, "report.json");
    const { code, stdout, stderr } = await runBench(["cluster_sim", "--quick", "--out", out]);
    assert.equal(code, 0, `bench exited ${code}:\n${stderr.slice(-4000)}`);
    assert.doesNotMatch(stderr, /Unhandled error event|ECONNREFUSED/, "no unhandled Redis client errors");
    assert.match(stdout, /^\| cluster_sim +\| /m, "the headline table has the simulator");
    assert.match(
      stdout,
      /^\| slots +\| models +\| offered\/s +\| bullmq\/s +\| corral\/s +\| ratio /m,
      "prints the scale table",
    );

    const report = JSON.parse(await readFile(out, "utf8")) as Record<string, Record<string, unknown>>;
    const sim = report.cluster_sim!;
    assert.equal(sim.error, undefined, `cluster_sim failed: ${String(sim.error)}`);
    assert.ok(isNumber(sim.corral) && isNumber(sim.baseline) && isNumber(sim.ratio));
    assert.equal(typeof sim.met, "boolean");
    assert.equal(sim.exactly_once, true);
    assert.equal(sim.all_completed, true);
    const targets = sim.targets as { name: string; met: boolean; reason: string | null }[];
    assert.deepEqual(
      targets.map((t) => t.name),
      ["sustained_ratio", "dispatch_p99_at_half", "idle_while_waiting"],
    );
    for (const t of targets) assert.ok(t.met || typeof t.reason === "string", `${t.name} says why it missed`);

    const sizes = sim.sizes as Record<string, unknown>[];
    assert.equal(sizes.length, 1);
    const size = sizes[0]!;
    assert.equal(size.slots, 4);
    assert.equal(size.models, 2);
    const bullmq = size.bullmq as Record<string, unknown>;
    const corral = size.corral as Record<string, unknown>;
    assert.equal(corral.not_run, null);
    assertEveryJobOnce("raw BullMQ", bullmq.offered as Run);
    assertEveryJobOnce("Corral at half rate", corral.half_rate as Run);
    assertEveryJobOnce("Corral offered", corral.offered as Run);

    const half = corral.half_rate as Record<string, unknown>;
    assert.equal(half.submit_errors, 0);
    for (const key of [
      "redis_cpu_us_per_job",
      "redis_commands_per_job",
      "redis_commands_per_claim",
      "scheduler_cpu_us_per_job",
      "slots_cpu_us_per_job",
      "connections",
    ])
      assert.ok(isNumber(half[key]) && half[key] > 0, `half_rate.${key} was measured`);
    // Each slot holds its command and cancel connections at least (4 slots, 2 lanes).
    assert.ok(isNumber(corral.connections_per_slot) && corral.connections_per_slot >= 2);
    assert.ok(isNumber(corral.submit_commands_per_job) && corral.submit_commands_per_job > 0);
    assert.ok(isNumber(corral.idle_commands_per_s));
  });
});
