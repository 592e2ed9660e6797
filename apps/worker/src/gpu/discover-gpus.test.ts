import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, test } from "node:test";
import { GpuInfo } from "@corral/shared";
import { pino } from "pino";
import type { CommandResult, CommandRunner } from "./command-runner.js";
import { applyGpuSamples, discoverGpus, sampleGpus } from "./discover-gpus.js";
import { CommandTimeoutError, NvidiaSmiError } from "./errors.js";
import { MIB, realFixture } from "./test-support/fixtures.js";

const ok = (stdout: string): CommandResult => ({ stdout, stderr: "", exitCode: 0 });

/** A runner that answers like an nvidia-smi whose outputs are the given texts, and records each call. */
function scriptedRunner(answers: {
  query?: CommandResult | Error;
  list?: CommandResult | Error;
  table?: CommandResult | Error;
}) {
  const calls: string[][] = [];
  const runner: CommandRunner = async (_file, args) => {
    calls.push([...args]);
    const answer = args[0]?.startsWith("--query-gpu=")
      ? answers.query
      : args[0] === "-L"
        ? answers.list
        : answers.table;
    if (answer === undefined) throw new Error(`unexpected call nvidia-smi ${args.join(" ")}`);
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { runner, calls };
}

function enoent(): Error {
  return Object.assign(new Error("spawn nvidia-smi ENOENT"), {
    code: "ENOENT",
    errno: -2,
    syscall: "spawn nvidia-smi",
  });
}

function capturingLogger() {
  const lines: Array<{ level: number; msg: string; component?: string }> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: "debug" }, stream), lines };
}

const base = { nvidiaSmiPath: "nvidia-smi", timeoutMs: 5000 };

const H100_MIG = {
  query: ok(realFixture("h100-mig_query-gpu-all-fields_load.csv")),
  list: ok(realFixture("h100-mig_list-gpus.txt")),
  table: ok(realFixture("h100-mig_default-table_load.txt")),
};

describe("discoverGpus with an injected runner", () => {
  test("asks --query-gpu for the discovery fields with a CSV header, then -L and the default table", async () => {
    const { runner, calls } = scriptedRunner(H100_MIG);
    await discoverGpus({ ...base, runner });
    assert.deepEqual(calls, [
      [
        "--query-gpu=index,uuid,name,memory.total,memory.used,memory.free,utilization.gpu,temperature.gpu,power.draw,driver_version,compute_cap,mig.mode.current",
        "--format=csv",
      ],
      ["-L"],
      [],
    ]);
  });

  test("H100 with MIG: the GPU, its four MIG devices with exact sizes from the table, driver and CUDA", async () => {
    const { runner } = scriptedRunner(H100_MIG);
    const discovery = await discoverGpus({ ...base, runner });
    assert.equal(discovery.mode, "gpu");
    assert.equal(discovery.driverVersion, "590.48.01");
    assert.equal(discovery.cudaVersion, "13.1");
    assert.equal(discovery.gpus.length, 1);
    const gpu = GpuInfo.parse(discovery.gpus[0]);
    assert.equal(gpu.mig_mode, "enabled");
    assert.equal(gpu.utilization_ratio, null);
    assert.equal(gpu.memory_free_bytes, 69956 * MIB);
    assert.deepEqual(
      gpu.mig_instances.map((instance) => [instance.device_index, instance.profile, instance.memory_total_bytes]),
      [
        [0, "3g.40gb", 40448 * MIB],
        [1, "2g.20gb", 20096 * MIB],
        [2, "1g.10gb", 9984 * MIB],
        [3, "1g.10gb", 9984 * MIB],
      ],
    );
  });

  test("MIG sizes come from the profile when the table has no MIG section", async () => {
    const { runner } = scriptedRunner({
      ...H100_MIG,
      table: ok("| NVIDIA-SMI 590.48.01   Driver Version: 590.48.01 |"),
    });
    const discovery = await discoverGpus({ ...base, runner });
    assert.equal(discovery.cudaVersion, null);
    assert.equal(discovery.gpus[0]!.mig_instances[0]!.memory_total_bytes, 40e9);
  });

  test("a GPU without MIG gets no MIG devices", async () => {
    const { runner } = scriptedRunner({
      query: ok(realFixture("h100-80gb-hbm3_query-gpu-all-fields_idle.csv")),
      list: ok("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-00000000-0000-0000-0000-000000000000)\n"),
      table: ok(realFixture("h100-mig_default-table_load.txt")),
    });
    const discovery = await discoverGpus({ ...base, runner });
    assert.equal(discovery.gpus[0]!.mig_mode, "disabled");
    assert.deepEqual(discovery.gpus[0]!.mig_instances, []);
    assert.equal(discovery.gpus[0]!.memory_free_bytes, 81081 * MIB);
  });

  test("no nvidia-smi (ENOENT) means CPU mode, logged once at info", async () => {
    const { runner, calls } = scriptedRunner({ query: enoent() });
    const { logger, lines } = capturingLogger();
    const discovery = await discoverGpus({ ...base, nvidiaSmiPath: "/nope/nvidia-smi", runner, logger });
    assert.deepEqual(discovery, { mode: "cpu", gpus: [], driverVersion: null, cudaVersion: null });
    assert.equal(calls.length, 1);
    const info = lines.filter((line) => line.level >= 30);
    assert.equal(info.length, 1);
    assert.equal(info[0]!.level, 30);
    assert.match(info[0]!.msg, /nvidia-smi not found/);
    assert.equal(info[0]!.component, "gpu-discovery");
  });

  test("a non-zero exit throws NvidiaSmiError naming the command, the status and the output", async () => {
    const driverDown =
      "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n";
    const { runner } = scriptedRunner({ query: { stdout: driverDown, stderr: "", exitCode: 9 } });
    const error = await discoverGpus({ ...base, runner }).then(
      () => assert.fail("expected a rejection"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof NvidiaSmiError);
    assert.equal(error.name, "NvidiaSmiError");
    assert.equal(error.reason, "exit");
    assert.equal(error.code, "nvidia_smi_exit");
    assert.equal(error.exitCode, 9);
    assert.match(error.command, /^nvidia-smi --query-gpu=index,uuid,name,.* --format=csv$/);
    assert.match(error.message, /`nvidia-smi --query-gpu=.*` exited with status 9: NVIDIA-SMI has failed/);
    assert.match(error.output, /couldn't communicate with the NVIDIA driver/);
  });

  test("a failing -L is an error too, naming -L", async () => {
    const { runner } = scriptedRunner({
      ...H100_MIG,
      list: { stdout: "", stderr: "Unable to determine the device handle", exitCode: 15 },
    });
    await assert.rejects(discoverGpus({ ...base, runner }), (error: unknown) => {
      assert.ok(error instanceof NvidiaSmiError);
      assert.equal(error.command, "nvidia-smi -L");
      assert.match(error.message, /exited with status 15: Unable to determine the device handle/);
      return true;
    });
  });

  test("garbage output throws NvidiaSmiError (unparsable) with an excerpt", async () => {
    const { runner } = scriptedRunner({ query: ok("\u0000 segfault?? <<<not nvidia-smi output>>>\n%%%% 12 ; ; ;\n") });
    await assert.rejects(discoverGpus({ ...base, runner }), (error: unknown) => {
      assert.ok(error instanceof NvidiaSmiError);
      assert.equal(error.reason, "unparsable");
      assert.equal(error.exitCode, 0);
      assert.match(error.message, /printed output that does not parse/);
      assert.match(error.output, /not nvidia-smi output/);
      return true;
    });
  });

  test("garbage from -L is unparsable too", async () => {
    const { runner } = scriptedRunner({ ...H100_MIG, list: ok("<html>oops</html>") });
    await assert.rejects(discoverGpus({ ...base, runner }), {
      name: "NvidiaSmiError",
      reason: "unparsable",
      command: "nvidia-smi -L",
    });
  });

  test("a timeout throws NvidiaSmiError (timeout)", async () => {
    const { runner } = scriptedRunner({ query: new CommandTimeoutError("nvidia-smi --query-gpu=…", 300) });
    await assert.rejects(discoverGpus({ ...base, timeoutMs: 300, runner }), (error: unknown) => {
      assert.ok(error instanceof NvidiaSmiError);
      assert.equal(error.reason, "timeout");
      assert.equal(error.exitCode, null);
      assert.match(error.message, /did not answer within 300 ms/);
      return true;
    });
  });

  test("a program that cannot be run (EACCES) throws NvidiaSmiError (spawn)", async () => {
    const { runner } = scriptedRunner({ query: Object.assign(new Error("spawn EACCES"), { code: "EACCES" }) });
    await assert.rejects(discoverGpus({ ...base, runner }), { name: "NvidiaSmiError", reason: "spawn" });
  });

  test("an older driver that rejects compute_cap is asked again without it", async () => {
    const calls: string[][] = [];
    const runner: CommandRunner = async (_file, args) => {
      calls.push([...args]);
      if (args[0]?.startsWith("--query-gpu=")) {
        if (args[0]!.includes("compute_cap")) {
          return { stdout: 'Field "compute_cap" is not a valid field to query.\n\n', stderr: "", exitCode: 2 };
        }
        return ok(
          "index, uuid, name, memory.total [MiB], memory.free [MiB]\n0, GPU-old, Tesla V100, 16160 MiB, 16000 MiB\n",
        );
      }
      return ok(args[0] === "-L" ? "GPU 0: Tesla V100 (UUID: GPU-old)\n" : "CUDA Version: 11.0");
    };
    const discovery = await discoverGpus({ ...base, runner });
    assert.equal(discovery.gpus[0]!.name, "Tesla V100");
    assert.equal(discovery.gpus[0]!.compute_capability, null);
    assert.equal(calls.filter((args) => args[0]?.startsWith("--query-gpu=")).length, 2);
    assert.ok(!calls[1]![0]!.includes("compute_cap"));
  });

  test("nvidia-smi with a header and no rows means CPU mode", async () => {
    const { runner } = scriptedRunner({ query: ok("index, uuid, name\n") });
    const discovery = await discoverGpus({ ...base, runner });
    assert.equal(discovery.mode, "cpu");
    assert.deepEqual(discovery.gpus, []);
  });
});

describe("sampleGpus", () => {
  test("runs one --query-gpu with the live fields and returns the samples", async () => {
    const { runner, calls } = scriptedRunner({
      query: ok(realFixture("rtx-4080-super_query-gpu-all-fields_load.csv")),
    });
    const samples = await sampleGpus({ ...base, runner });
    assert.deepEqual(calls, [
      [
        "--query-gpu=index,uuid,memory.total,memory.used,memory.free,utilization.gpu,temperature.gpu,power.draw",
        "--format=csv",
      ],
    ]);
    assert.deepEqual(samples, [
      {
        index: 0,
        uuid: "GPU-00000000-0000-0000-0000-000000000000",
        memory_total_bytes: 16376 * MIB,
        memory_used_bytes: 1474 * MIB,
        memory_free_bytes: 14470 * MIB,
        utilization_ratio: 0.07,
        temperature_celsius: 46,
        power_watts: 84.24,
      },
    ]);
  });

  test("a missing nvidia-smi is an error here (reason missing), not CPU mode", async () => {
    const { runner } = scriptedRunner({ query: enoent() });
    await assert.rejects(sampleGpus({ ...base, runner }), { name: "NvidiaSmiError", reason: "missing" });
  });

  test("applyGpuSamples refreshes live numbers by UUID and keeps the rest", async () => {
    const { runner } = scriptedRunner(H100_MIG);
    const { gpus } = await discoverGpus({ ...base, runner });
    const refreshed = applyGpuSamples(gpus, [
      {
        index: 0,
        uuid: "GPU-00000000-0000-0000-0000-000000000000",
        memory_total_bytes: 81559 * MIB,
        memory_used_bytes: 500 * MIB,
        memory_free_bytes: 80580 * MIB,
        utilization_ratio: null,
        temperature_celsius: 40,
        power_watts: 80,
      },
      { ...gpus[0]!, uuid: "GPU-other", index: 7 },
    ]);
    assert.equal(refreshed.length, 1);
    assert.equal(refreshed[0]!.memory_free_bytes, 80580 * MIB);
    assert.equal(refreshed[0]!.temperature_celsius, 40);
    assert.equal(refreshed[0]!.name, "NVIDIA H100 80GB HBM3");
    assert.equal(refreshed[0]!.mig_instances.length, 4);
    assert.deepEqual(applyGpuSamples(gpus, []), gpus);
  });
});
