import assert from "node:assert/strict";
import { test } from "node:test";
import { pino } from "pino";
import { discoverGpus, type CommandRunner } from "../gpu/index.js";
import { MIB, realFixture } from "../gpu/test-support/fixtures.js";
import { planSlots } from "../supervisor/plan-slots.js";
import { GpuMemoryProbe } from "./memory-probe.js";

test("a MIG slot's live memory comes from its own row of the MIG devices table, not the whole GPU", async () => {
  const calls: string[][] = [];
  let table = realFixture("h100-mig_default-table_load.txt");
  const runner: CommandRunner = async (_file, args) => {
    calls.push([...args]);
    const stdout = args[0]?.startsWith("--query-gpu=")
      ? realFixture("h100-mig_query-gpu-all-fields_load.csv")
      : args[0] === "-L"
        ? realFixture("h100-mig_list-gpus.txt")
        : table;
    return { stdout, stderr: "", exitCode: 0 };
  };
  const nvidiaSmi = { nvidiaSmiPath: "nvidia-smi", timeoutMs: 5000, runner };
  const discovery = await discoverGpus(nvidiaSmi);
  const slot = planSlots({ workerId: "box", gpus: null, cpu: false, cpuSlots: 1, threads: null }, discovery, 4)[0]!;
  let now = 0;
  const probe = new GpuMemoryProbe({
    gpus: slot.gpus,
    nvidiaSmi,
    reserveBytes: null,
    logger: pino({ level: "silent" }),
    now: () => now,
  });
  calls.length = 0;
  const first = await probe.read();
  assert.deepEqual(calls, [[]], "plain nvidia-smi (the table), not --query-gpu");
  // MIG 3g.40gb (device 0): 11091 MiB used of 40448; the whole H100 shows 69956 MiB free.
  assert.equal(first.totalBytes, 40448 * MIB);
  assert.equal(first.freeBytes, (40448 - 11091) * MIB);

  // Another process takes 20000 MiB on this MIG device: the next sample sees it.
  table = table.replace("11091MiB / 40448MiB", "31091MiB / 40448MiB");
  now = 10_000;
  assert.equal((await probe.read()).freeBytes, (40448 - 31091) * MIB);
  assert.equal(probe.gpus()[0]!.memory_used_bytes, 31091 * MIB);
});

test("a slot over two GPUs keeps the reserve on each: the sum of the per-GPU reserves", () => {
  const gpu = (index: number, totalMib: number) => ({
    index,
    uuid: `GPU-${index}`,
    name: "NVIDIA RTX A5000",
    memory_total_bytes: totalMib * MIB,
    memory_used_bytes: 0,
    memory_free_bytes: totalMib * MIB,
    utilization_ratio: 0,
    temperature_celsius: 30,
    power_watts: 70,
    driver_version: "590.44.01",
    compute_capability: "8.6",
    mig_mode: "disabled" as const,
    mig_instances: [],
  });
  const nvidiaSmi = { nvidiaSmiPath: "nvidia-smi", timeoutMs: 5000 };
  const logger = pino({ level: "silent" });
  const pair = new GpuMemoryProbe({ gpus: [gpu(0, 24564), gpu(1, 8192)], nvidiaSmi, reserveBytes: null, logger });
  // min(8 %, 1.6 GiB) of each: 1.6 GiB of the 24 GiB GPU, 655 MiB of the 8 GiB one; not 1.6 GiB of the sum.
  assert.equal(pair.reserveBytes((24564 + 8192) * MIB), Math.floor(1.6 * 1024 ** 3) + Math.floor(8192 * MIB * 0.08));
  const configured = new GpuMemoryProbe({ gpus: [gpu(0, 24564), gpu(1, 8192)], nvidiaSmi, reserveBytes: MIB, logger });
  assert.equal(configured.reserveBytes(0), 2 * MIB);
  const single = new GpuMemoryProbe({ gpus: [gpu(0, 24564)], nvidiaSmi, reserveBytes: null, logger });
  assert.equal(single.reserveBytes(24564 * MIB), Math.floor(1.6 * 1024 ** 3));
});
