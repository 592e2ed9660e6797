import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCommandStats } from "../../bench/lib/bench-redis.js";
import { parseArgs } from "../../bench/lib/runner.js";
import { median, percentile, ratio } from "../../bench/lib/stats.js";
import { repoRootDir, sharedModelsDir } from "../support/models.js";

// The benchmarks themselves never run in CI (npm run bench does). This runs the harness
// once on a tiny configuration and checks the JSON it writes: keys and types, and the
// facts that do not depend on timing. No figure is compared with a time.

const BENCHMARKS = [
  "e2e_throughput",
  "dispatch_latency",
  "claim_saturation",
  "redis_cost",
  "scaling",
  "http_submit",
  "crash_recovery",
  "replica_wait",
  "redis_ceiling",
  "transcription_rtf",
  "prefix_reuse",
];

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "bench/run.ts", ...args], {
      cwd: repoRootDir,
      env: { ...process.env, CORRAL_MODELS_DIR: sharedModelsDir(), CORRAL_BENCH_QUICK: "" },
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

function assertHeadline(name: string, entry: Record<string, unknown>): void {
  assert.equal(entry.error, undefined, `${name} failed: ${String(entry.error)}`);
  for (const key of ["corral", "baseline", "ratio"]) {
    assert.ok(entry[key] === null || isNumber(entry[key]), `${name}.${key} is a number or null`);
  }
  assert.ok(isNumber(entry.corral), `${name}.corral was measured`);
  assert.equal(typeof entry.unit, "string");
  assert.equal(typeof entry.target, "string");
  assert.ok(entry.met === null || typeof entry.met === "boolean", `${name}.met is a boolean or null`);
  assert.equal(typeof entry.measured_at, "string");
}

describe("bench harness, quick run", () => {
  let dir = "";
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("runs every benchmark on a tiny configuration and writes the report", async () => {
    dir = await mkdtemp(join(tmpdir(), "corral-bench-smoke-"));
    const out = join(dir, "report.json");
    const { code, stdout, stderr } = await runBench([...BENCHMARKS, "--quick", "--out", out]);
    assert.equal(code, 0, `bench exited ${code}:\n${stderr.slice(-4000)}`);
    assert.match(stdout, /^\| benchmark +\| corral +\| baseline +\| ratio +\| unit/m, "prints the table");
    for (const name of BENCHMARKS) assert.match(stdout, new RegExp(`^\\| ${name} `, "m"), `the table has ${name}`);

    const report = JSON.parse(await readFile(out, "utf8")) as Record<string, Record<string, unknown>>;
    const machine = report.machine!;
    assert.equal(typeof machine.cpu, "string");
    assert.ok(isNumber(machine.cores) && machine.cores > 0);
    assert.match(String(machine.node), /^v\d+\./);
    assert.ok(!Number.isNaN(Date.parse(String(machine.date))));
    assert.equal(report.quick as unknown, true);
    for (const name of BENCHMARKS) assertHeadline(name, report[name]!);

    const e2e = report.e2e_throughput!;
    const tokens = e2e.completion_tokens as { corral: number; baseline: number };
    // Temperature 0 and the same prompts: Corral and the direct loop generate the same tokens.
    assert.equal(tokens.corral, tokens.baseline);
    assert.ok(tokens.corral > 0);
    assert.ok(isNumber((e2e.overhead_ms_per_job as Record<string, number>).added));
    assert.ok(isNumber((e2e.jobs_per_s as Record<string, number>).corral));

    const dispatch = report.dispatch_latency!;
    for (const rate of ["rate_100", "rate_300"]) {
      const figures = dispatch[rate] as Record<string, Record<string, number>>;
      for (const side of ["corral", "baseline"]) {
        for (const key of ["enqueue_p99", "claim_p50", "claim_p99", "result_p50", "result_p99"])
          assert.ok(isNumber(figures[side]![key]), `${rate}.${side}.${key}`);
      }
    }
    // At the headline rate Corral is also driven by submit-and-wait: one request answers
    // with the result, so there is no enqueue figure (null), only the claim and the result.
    const waited = (dispatch.rate_100 as Record<string, Record<string, number | null>>).corral_submit_and_wait!;
    for (const key of ["claim_p50", "claim_p99", "result_p50", "result_p99"])
      assert.ok(isNumber(waited[key]), `rate_100.corral_submit_and_wait.${key}`);
    assert.equal(waited.enqueue_p99, null);

    // Both systems ran the quick rates; each point says whether it kept its claim p99 under the limit.
    const saturation = report.claim_saturation!.points as Record<string, { offered: number; claim_p99_ms: number }[]>;
    for (const side of ["corral", "baseline"]) {
      assert.deepEqual(
        saturation[side]!.map((p) => p.offered),
        [50, 100],
        side,
      );
      assert.ok(saturation[side]!.every((p) => isNumber(p.claim_p99_ms)));
    }

    const redis = report.redis_cost!;
    for (const workload of ["tokens_64", "tokens_1"]) {
      const w = redis[workload] as Record<string, unknown>;
      assert.ok(isNumber(w.corral) && w.corral > 0 && isNumber(w.baseline) && w.baseline > 0);
      const byCommand = w.corral_by_command as Record<string, number>;
      assert.ok(Object.values(byCommand).every(isNumber));
      // Every job is added by a script and finished by one: Corral runs scripts for each.
      assert.ok((byCommand.evalsha ?? 0) >= 2, `EVALSHA per job: ${byCommand.evalsha}`);
    }

    const scaling = report.scaling!.tokens_per_s as Record<string, Record<string, unknown>>;
    assert.ok(isNumber(scaling.slots_1_seq_1?.corral) && isNumber(scaling.slots_2_seq_1?.corral));

    const http = report.http_submit!;
    assert.equal((http.submit as Record<string, number>).errors, 0, "every POST /v1/jobs was accepted");
    assert.ok(isNumber((http.hello as Record<string, number>).requests_per_s));
    assert.equal(
      (http.hello as Record<string, number>).errors,
      0,
      "the hello route on the scheduler's server answered",
    );
    assert.ok(isNumber((http.hello_bare_express as Record<string, number>).requests_per_s));

    const crash = report.crash_recovery!;
    assert.ok((crash.recovery_ms as unknown[]).length > 0 && (crash.recovery_ms as unknown[]).every(isNumber));
    assert.ok(isNumber(crash.one_slot_ms));

    // WAIT ran once per submit with the setting on, never with it off.
    const wait = report.replica_wait!;
    const waitOn = wait.wait_on as Record<string, Record<string, number> | number>;
    const waitOff = wait.wait_off as Record<string, Record<string, number> | number>;
    assert.ok(
      (waitOn.wait_calls_per_submit as number) >= 0.9,
      `WAIT per submit: ${String(waitOn.wait_calls_per_submit)}`,
    );
    assert.equal(waitOff.wait_calls_per_submit, 0);
    for (const side of [waitOn, waitOff]) {
      const sequential = side.sequential as Record<string, number>;
      assert.ok(isNumber(sequential.p50_ms) && isNumber(sequential.p99_ms));
      assert.equal((side.concurrent as Record<string, number>).errors, 0, "every submit was accepted");
    }

    const ceiling = report.redis_ceiling!;
    const rates = ceiling.rates as Record<string, unknown>[];
    assert.ok(rates.length > 0 && rates.every((r) => isNumber(r.achieved_per_s) && isNumber(r.redis_cpu_us_per_job)));
    assert.equal(typeof (ceiling.first_to_saturate as Record<string, unknown>).resource, "string");

    // Both sides transcribed: the Corral jobs succeeded (the run throws otherwise) and spent
    // their wall time mostly in the engine.
    const transcription = report.transcription_rtf!;
    assert.ok(isNumber(transcription.baseline) && transcription.baseline > 0);
    const share = transcription.engine_share_of_wall;
    assert.ok(isNumber(share) && share > 0 && share <= 1, `engine share ${String(share)}`);

    // Only the reuse side kept prompt tokens; both ran the same prompts. (Whether the texts
    // match is the engine tests' to pin down: concurrent batches add noise, see the bench.)
    const prefix = report.prefix_reuse as Record<string, Record<string, number>>;
    const reuse = prefix.reuse!;
    assert.ok(reuse.reused_prompt_tokens! > 0 && reuse.reused_prompt_tokens! < reuse.prompt_tokens!);
    assert.equal(prefix.no_reuse!.reused_prompt_tokens, 0);
    assert.equal(reuse.prompt_tokens, prefix.no_reuse!.prompt_tokens);
    assert.ok(Array.isArray(prefix.differing_prompts));
    assert.ok(isNumber(reuse.ttft_p50_ms) && isNumber(prefix.no_reuse!.ttft_p50_ms));
  });
});

describe("bench helpers", () => {
  test("commandstats parsing keeps the measured commands and drops the harness's own", () => {
    const info = [
      "# Commandstats",
      "cmdstat_evalsha:calls=12,usec=100,usec_per_call=8.33,rejected_calls=0,failed_calls=0",
      "cmdstat_config|resetstat:calls=1,usec=5,usec_per_call=5.00,rejected_calls=0,failed_calls=0",
      "cmdstat_info:calls=3,usec=50,usec_per_call=16.67,rejected_calls=0,failed_calls=0",
      "cmdstat_zadd:calls=7,usec=30,usec_per_call=4.29,rejected_calls=0,failed_calls=0",
    ].join("\r\n");
    assert.deepEqual(parseCommandStats(info), { evalsha: 12, zadd: 7 });
  });

  test("percentiles interpolate between ranks; ratios refuse a zero baseline", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(percentile([1, 2, 3, 4], 50), 2.5);
    assert.equal(percentile([0, 100], 99), 99);
    assert.ok(Number.isNaN(median([])));
    assert.equal(ratio(1, 0), null);
    assert.equal(ratio(9, 10), 0.9);
  });

  test("argument parsing: names, --quick, --runs, --out and CORRAL_BENCH_QUICK", () => {
    assert.deepEqual(parseArgs(["e2e_throughput", "--runs", "5", "--out=x.json"], {}), {
      names: ["e2e_throughput"],
      quick: false,
      runs: 5,
      profile: false,
      out: "x.json",
    });
    assert.equal(parseArgs([], { CORRAL_BENCH_QUICK: "1" }).quick, true);
    assert.throws(() => parseArgs(["--runs", "0"], {}));
    assert.throws(() => parseArgs(["--nope"], {}));
  });
});
