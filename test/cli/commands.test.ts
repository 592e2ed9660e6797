import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { SCHEDULER_ENV } from "@corral/scheduler";
import { variableToFlag } from "@corral/shared";
import { WORKER_ENV } from "@corral/worker";
import { repoRootDir, sharedModelsDir } from "../support/models.js";
import { STACK_LINE, corralEnv, runCorral } from "./run-corral.js";

const FAKE_NVIDIA_SMI = resolve(repoRootDir, "test/support/fake-nvidia-smi.mjs");

describe("corral --help", () => {
  test("lists every command", async () => {
    const { code, stdout } = await runCorral(["--help"]);
    assert.equal(code, 0);
    for (const command of ["up", "scheduler", "worker", "submit", "models", "workers", "quota", "gpus", "doctor"]) {
      assert.match(stdout, new RegExp(`^  ${command}\\b`, "m"), `--help lists ${command}`);
    }
  });

  test("scheduler --help has a flag, with its variable, for every SCHEDULER_ENV variable", async () => {
    const { code, stdout } = await runCorral(["scheduler", "--help"]);
    assert.equal(code, 0);
    assert.ok(SCHEDULER_ENV.length > 5);
    const help = stdout.replace(/\s+/g, " ");
    for (const variable of SCHEDULER_ENV) {
      // true/false settings are switches (`--allow-open`), as the worker's are.
      const isSwitch = variable.default === "true" || variable.default === "false";
      const flag = variableToFlag(variable.name);
      assert.ok(
        isSwitch ? new RegExp(`${flag} (?!<value>)`).test(help) : help.includes(`${flag} <value>`),
        `flag for ${variable.name}`,
      );
      assert.ok(help.includes(`env ${variable.name}`), `${variable.name} named in --help`);
    }
  });

  test("worker --help has a flag for every WORKER_ENV variable, switches for booleans", async () => {
    const { code, stdout } = await runCorral(["worker", "--help"]);
    assert.equal(code, 0);
    const help = stdout.replace(/\s+/g, " ");
    for (const variable of WORKER_ENV) {
      assert.ok(help.includes(variableToFlag(variable.name)), `flag for ${variable.name}`);
    }
    assert.match(help, /--cpu (?!<value>)/);
    assert.match(help, /--redis-allow-eviction (?!<value>)/);
    assert.match(help, /--gpus <value>/);
  });

  test("up --help offers the scheduler's and the worker's flags and --demo", async () => {
    const { code, stdout } = await runCorral(["up", "--help"]);
    assert.equal(code, 0);
    for (const variable of [...SCHEDULER_ENV, ...WORKER_ENV]) {
      assert.ok(stdout.includes(variableToFlag(variable.name)), `flag for ${variable.name}`);
    }
    assert.match(stdout, /--demo/);
  });
});

describe("bad configuration", () => {
  test("a bad flag value names the variable, hints the flag, exits 2, and prints no stack", async () => {
    const { code, stderr } = await runCorral(["scheduler", "--port", "abc"]);
    assert.equal(code, 2);
    assert.match(stderr, /^error: CORRAL_PORT: expected .*\(got "abc"\)$/m);
    assert.match(stderr, /--port/);
    assert.doesNotMatch(stderr, STACK_LINE);
  });

  test("a bad environment value is reported the same way, and a flag overrides the environment", async () => {
    const bad = await runCorral(["worker"], corralEnv({ CORRAL_CPU_SLOTS: "lots" }));
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /CORRAL_CPU_SLOTS/);
    assert.doesNotMatch(bad.stderr, STACK_LINE);
    // --redis-url beats the environment's bad value; --heartbeat-ms 5 then is the first error.
    const flagged = await runCorral(
      ["worker", "--redis-url", "redis://127.0.0.1:1", "--heartbeat-ms", "5"],
      corralEnv({ CORRAL_REDIS_URL: "not-a-url" }),
    );
    assert.equal(flagged.code, 2);
    assert.match(flagged.stderr, /CORRAL_HEARTBEAT_MS/);
  });

  test("an unknown option is a usage error (exit 2)", async () => {
    const { code, stderr } = await runCorral(["gpus", "--no-such-flag"]);
    assert.equal(code, 2);
    assert.match(stderr, /unknown option/);
  });
});

describe("corral gpus", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "corral-gpus-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("without nvidia-smi it says workers run in CPU mode", async () => {
    const { code, stdout } = await runCorral(["gpus"], corralEnv({ CORRAL_NVIDIA_SMI: join(dir, "no-nvidia-smi") }));
    assert.equal(code, 0);
    assert.match(stdout, /no NVIDIA GPU found \(nvidia-smi missing\): workers run in CPU mode/);
  });

  test("lists the GPUs the (fake) nvidia-smi reports, as a table and as JSON", async () => {
    const spec = join(dir, "spec.json");
    await writeFile(
      spec,
      JSON.stringify({
        gpus: [
          { name: "NVIDIA RTX A5000", memory_total_mib: 24564, memory_used_mib: 1024 },
          { name: "NVIDIA H100 80GB HBM3", mig: ["3g.40gb"] },
        ],
      }),
    );
    const env = corralEnv({ CORRAL_FAKE_NVIDIA_SMI_SPEC: spec });
    const table = await runCorral(["gpus", "--nvidia-smi", FAKE_NVIDIA_SMI], env);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /NVIDIA RTX A5000/);
    assert.match(table.stdout, /NVIDIA H100 80GB HBM3/);
    assert.match(table.stdout, /2 GPUs/);
    assert.doesNotMatch(table.stdout, /CPU mode/);

    const json = await runCorral(["gpus", "--json"], { ...env, CORRAL_NVIDIA_SMI: FAKE_NVIDIA_SMI });
    assert.equal(json.code, 0, json.stderr);
    const discovery = JSON.parse(json.stdout) as { mode: string; gpus: { index: number; name: string }[] };
    assert.equal(discovery.mode, "gpu");
    assert.deepEqual(
      discovery.gpus.map((g) => [g.index, g.name]),
      [
        [0, "NVIDIA RTX A5000"],
        [1, "NVIDIA H100 80GB HBM3"],
      ],
    );
  });

  test("an nvidia-smi that fails is an error with a hint, not a stack", async () => {
    const spec = join(dir, "broken.json");
    await writeFile(spec, JSON.stringify({ gpus: [{}], fail: "exit" }));
    const { code, stderr } = await runCorral(
      ["gpus", "--nvidia-smi", FAKE_NVIDIA_SMI],
      corralEnv({ CORRAL_FAKE_NVIDIA_SMI_SPEC: spec }),
    );
    assert.equal(code, 1);
    assert.match(stderr, /^error: GPU discovery failed/m);
    assert.match(stderr, /^hint: /m);
    assert.doesNotMatch(stderr, STACK_LINE);
  });
});

describe("client commands without a scheduler", () => {
  test("say the scheduler cannot be reached and how to start one", async () => {
    const { code, stderr } = await runCorral(["workers", "--url", "http://127.0.0.1:1"]);
    assert.equal(code, 1);
    assert.match(stderr, /cannot reach the scheduler at http:\/\/127\.0\.0\.1:1/);
    assert.match(stderr, /corral up/);
  });

  test("submit needs a prompt or a messages file", async () => {
    const { code, stderr } = await runCorral(["submit", "--model", "m"]);
    assert.equal(code, 2);
    assert.match(stderr, /--prompt or --messages-file/);
  });
});

describe("corral doctor", () => {
  test("reports each check with ok/warn and a fix, and exits 0 when nothing fails", { timeout: 60_000 }, async () => {
    const { code, stdout } = await runCorral(
      ["doctor", "--redis-url", "redis://127.0.0.1:1", "--models-dir", sharedModelsDir()],
      corralEnv({ CORRAL_NVIDIA_SMI: join(tmpdir(), "no-nvidia-smi-here") }),
    );
    assert.equal(code, 0, stdout);
    assert.match(stdout, /^ok\s+node\s+Node v\d+/m);
    assert.match(stdout, /^warn\s+redis\s+no Redis answers at redis:\/\/127\.0\.0\.1:1$/m);
    assert.match(stdout, /^\s+fix: .*CORRAL_REDIS_URL/m);
    assert.match(stdout, /^ok\s+models\s+\d+ \.gguf in .*stories260K\.gguf/m);
    assert.match(stdout, /^warn\s+gpus\s+no NVIDIA GPU .*CPU mode$/m);
    assert.match(stdout, /^ok\s+llama\.cpp\s+node-llama-cpp backend: cpu/m);
  });
});
