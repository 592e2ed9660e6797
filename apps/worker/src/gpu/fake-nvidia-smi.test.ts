import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { nvidiaSmiFixturesDir } from "../../../../test/support/models.js";
import { execFileRunner } from "./command-runner.js";
import { discoverGpus, sampleGpus } from "./discover-gpus.js";
import { NvidiaSmiError } from "./errors.js";
import { parseQueryGpuCsv, readQueryGpuCsv } from "./parse-query-gpu-csv.js";
import { MIB, fakeNvidiaSmiPath, realFixture } from "./test-support/fixtures.js";

// discoverGpus and sampleGpus through the real execFileRunner, against test/support/fake-nvidia-smi.mjs.
describe("discoverGpus through execFileRunner against the fake nvidia-smi", () => {
  let dir = "";
  let specs = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "corral-fake-nvidia-smi-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Options that run the fake with this spec (none: the fake's default, one verbatim H100). */
  async function withSpec(spec?: unknown, timeoutMs = 10_000) {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, CORRAL_NVIDIA_SMI_FIXTURES: nvidiaSmiFixturesDir() };
    if (spec !== undefined) {
      const path = join(dir, `spec-${specs++}.json`);
      await writeFile(path, JSON.stringify(spec));
      env.CORRAL_FAKE_NVIDIA_SMI_SPEC = path;
    }
    return { nvidiaSmiPath: fakeNvidiaSmiPath, timeoutMs, runner: execFileRunner, env };
  }

  test("without a spec the fake prints the real H100 row verbatim, for all 212 fields", async () => {
    const real = realFixture("h100-80gb-hbm3_query-gpu-all-fields_idle.csv");
    const fields = [...readQueryGpuCsv(real)[0]!.keys()];
    const options = await withSpec();
    const result = await execFileRunner(fakeNvidiaSmiPath, [`--query-gpu=${fields.join(",")}`, "--format=csv"], {
      timeoutMs: options.timeoutMs,
      env: options.env,
    });
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout.trimEnd(), real.trimEnd());
  });

  test("two GPUs from a spec: names, memory, MIG devices and the CUDA version", async () => {
    const options = await withSpec({
      gpus: [
        { name: "NVIDIA H100 80GB HBM3", memory_total_mib: 8192, memory_used_mib: 0 },
        { name: "NVIDIA H200", memory_total_mib: 143771, memory_used_mib: 1024, mig: ["1c.3g.71gb", "2g.35gb"] },
      ],
    });
    const discovery = await discoverGpus(options);
    assert.equal(discovery.mode, "gpu");
    assert.equal(discovery.cudaVersion, "12.4");
    assert.equal(discovery.driverVersion, "590.48.01");
    assert.deepEqual(
      discovery.gpus.map((gpu) => [gpu.index, gpu.name, gpu.memory_total_bytes, gpu.memory_free_bytes, gpu.mig_mode]),
      [
        [0, "NVIDIA H100 80GB HBM3", 8192 * MIB, 8192 * MIB, "disabled"],
        [1, "NVIDIA H200", 143771 * MIB, (143771 - 1024) * MIB, "enabled"],
      ],
    );
    assert.notEqual(discovery.gpus[0]!.uuid, discovery.gpus[1]!.uuid);
    assert.deepEqual(
      discovery.gpus[1]!.mig_instances.map((instance) => [
        instance.device_index,
        instance.profile,
        instance.memory_total_bytes,
      ]),
      [
        [0, "1c.3g.71gb", 71e9],
        [1, "2g.35gb", 35e9],
      ],
    );
    assert.deepEqual(discovery.gpus[0]!.mig_instances, []);
  });

  test("sampleGpus reads live memory from the fake; noheader/nounits output parses with the field list", async () => {
    const options = await withSpec({ gpus: [{ memory_total_mib: 24564, memory_used_mib: 4000, utilization_pct: 55 }] });
    const [sample] = await sampleGpus(options);
    assert.equal(sample!.memory_free_bytes, 20564 * MIB);
    assert.equal(sample!.utilization_ratio, 0.55);
    const fields = ["index", "memory.free", "power.draw"];
    const raw = await execFileRunner(
      fakeNvidiaSmiPath,
      [`--query-gpu=${fields.join(",")}`, "--format=csv,noheader,nounits"],
      {
        timeoutMs: options.timeoutMs,
        env: options.env,
      },
    );
    assert.equal(raw.stdout, "0, 20564, 69.85\n");
    assert.equal(parseQueryGpuCsv(raw.stdout, { fields })[0]!.memory_free_bytes, 20564 * MIB);
  });

  test("a spec without CUDA version gives a null CUDA version", async () => {
    const discovery = await discoverGpus(await withSpec({ gpus: [{}], cuda_version: null }));
    assert.equal(discovery.cudaVersion, null);
  });

  test('fail "exit": NvidiaSmiError with the exit status and the driver message', async () => {
    await assert.rejects(discoverGpus(await withSpec({ gpus: [{}], fail: "exit" })), (error: unknown) => {
      assert.ok(error instanceof NvidiaSmiError);
      assert.equal(error.reason, "exit");
      assert.equal(error.exitCode, 9);
      assert.ok(error.command.startsWith(`${fakeNvidiaSmiPath} --query-gpu=`));
      assert.match(error.output, /couldn't communicate with the NVIDIA driver/);
      return true;
    });
  });

  test('fail "exit" on -L only: the error names -L', async () => {
    await assert.rejects(discoverGpus(await withSpec({ gpus: [{}], fail: "exit", fail_on: ["list"] })), {
      name: "NvidiaSmiError",
      reason: "exit",
      command: `${fakeNvidiaSmiPath} -L`,
    });
  });

  test('fail "garbage": NvidiaSmiError (unparsable)', async () => {
    await assert.rejects(discoverGpus(await withSpec({ gpus: [{}], fail: "garbage" })), {
      name: "NvidiaSmiError",
      reason: "unparsable",
    });
  });

  test('fail "hang": killed after timeoutMs, NvidiaSmiError (timeout)', async () => {
    await assert.rejects(discoverGpus(await withSpec({ gpus: [{}], fail: "hang" }, 300)), (error: unknown) => {
      assert.ok(error instanceof NvidiaSmiError);
      assert.equal(error.reason, "timeout");
      assert.match(error.message, /did not answer within 300 ms and was killed/);
      return true;
    });
  });

  test("a path where nothing exists means CPU mode", async () => {
    const options = await withSpec();
    const discovery = await discoverGpus({ ...options, nvidiaSmiPath: join(dir, "no-such-nvidia-smi") });
    assert.deepEqual(discovery, { mode: "cpu", gpus: [], driverVersion: null, cudaVersion: null });
  });
});
