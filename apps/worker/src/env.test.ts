import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "@corral/shared";
import { WORKER_ENV, loadConfig } from "./env.js";

describe("worker loadConfig", () => {
  test("applies the documented defaults", () => {
    const config = loadConfig({ CORRAL_WORKER_ID: "box-1" });
    assert.equal(config.redisUrl, "redis://127.0.0.1:6379");
    assert.equal(config.nvidiaSmiPath, "nvidia-smi");
    assert.equal(config.nvidiaSmiTimeoutMs, 5000);
    assert.equal(config.gpus, null);
    assert.equal(config.cpu, false);
    assert.equal(config.cpuSlots, 1);
    assert.equal(config.threads, null);
    assert.equal(config.reserveBytes, null);
    assert.equal(config.swapAfterMs, 30_000);
    assert.equal(config.keepAliveMs, 300_000);
    assert.equal(config.drainMs, 30_000);
    assert.deepEqual(config.jobLimits, { timeoutMs: 600_000, minTokensPerSecond: 0.1, rateGraceMs: 30_000 });
    assert.equal(config.prefixReuse, true);
    assert.equal(config.stalledIntervalMs, 30_000);
    assert.equal(config.lockDurationMs, 30_000);
    assert.equal(config.interactiveLeaseMs, 10_000);
    assert.equal(config.heartbeatMs, 2000);
    assert.equal(config.oomCooldownMs, 600_000);
    assert.equal(config.metricsPort, 9464);
    assert.equal(config.workerId, "box-1");
    assert.equal(config.tokenStreamTtlSeconds, 3600);
  });

  test("parses lists, sizes and durations", () => {
    const config = loadConfig({
      CORRAL_GPUS: "0, 2",
      CORRAL_CPU: "yes",
      CORRAL_CPU_SLOTS: "3",
      CORRAL_THREADS: "4",
      CORRAL_VRAM_RESERVE: "1.5GiB",
      CORRAL_KEEP_ALIVE: "10m",
      CORRAL_TOKEN_STREAM_TTL: "90s",
      CORRAL_WORKER_METRICS_PORT: "0",
    });
    assert.deepEqual(config.gpus, [0, 2]);
    assert.equal(config.cpu, true);
    assert.equal(config.cpuSlots, 3);
    assert.equal(config.threads, 4);
    assert.equal(config.reserveBytes, 1.5 * 1024 ** 3);
    assert.equal(config.keepAliveMs, 600_000);
    assert.equal(config.tokenStreamTtlSeconds, 90);
    assert.equal(config.metricsPort, 0);
    assert.equal(loadConfig({ CORRAL_GPUS: "all" }).gpus, null);
  });

  test("CORRAL_GPU_GROUPS: groups of two or more GPUs, each GPU in one group at most", () => {
    assert.deepEqual(loadConfig({}).gpuGroups, []);
    assert.deepEqual(loadConfig({ CORRAL_GPU_GROUPS: "0+1, 2+3+4" }).gpuGroups, [
      [0, 1],
      [2, 3, 4],
    ]);
    for (const bad of ["0", "0+x", "0+1,1+2", "0+0", "0,1"])
      assert.throws(
        () => loadConfig({ CORRAL_GPU_GROUPS: bad }),
        (error: unknown) => error instanceof ConfigError && error.variable === "CORRAL_GPU_GROUPS",
        bad,
      );
  });

  test("CORRAL_RESERVE_GPUS: GPUs kept for named models; none by default; a bad value names the variable", () => {
    assert.deepEqual(loadConfig({}).reserveGpus, {});
    assert.deepEqual(loadConfig({ CORRAL_RESERVE_GPUS: "0,1=llama-70b; 3=embed|org/rerank:v2 ;0=qwen" }).reserveGpus, {
      0: ["llama-70b", "qwen"],
      1: ["llama-70b"],
      3: ["embed", "org/rerank:v2"],
    });
    for (const bad of ["llama-70b", "x=llama", "0=", "0=a b"])
      assert.throws(
        () => loadConfig({ CORRAL_RESERVE_GPUS: bad }),
        (error: unknown) => error instanceof ConfigError && error.variable === "CORRAL_RESERVE_GPUS",
        bad,
      );
  });

  test("dynamic groups: on by default with a 60 s bound; a bad value names the variable", () => {
    assert.equal(loadConfig({}).dynamicGroups, true);
    assert.equal(loadConfig({}).groupDrainMs, 60_000);
    assert.equal(loadConfig({ CORRAL_DYNAMIC_GROUPS: "false" }).dynamicGroups, false);
    assert.equal(loadConfig({ CORRAL_GROUP_DRAIN_MS: "2m" }).groupDrainMs, 120_000);
    for (const [variable, bad] of [
      ["CORRAL_GROUP_DRAIN_MS", "soon"],
      ["CORRAL_DYNAMIC_GROUPS", "maybe"],
    ] as const)
      assert.throws(
        () => loadConfig({ [variable]: bad }),
        (error: unknown) => error instanceof ConfigError && error.variable === variable,
        bad,
      );
  });

  test("job limits: durations, a decimal rate, and 0 for none", () => {
    const config = loadConfig({
      CORRAL_JOB_TIMEOUT_MS: "90s",
      CORRAL_JOB_MIN_TOKENS_PER_SECOND: "0.5",
      CORRAL_JOB_RATE_GRACE_MS: "0",
    });
    assert.deepEqual(config.jobLimits, { timeoutMs: 90_000, minTokensPerSecond: 0.5, rateGraceMs: 0 });
    assert.throws(() => loadConfig({ CORRAL_JOB_MIN_TOKENS_PER_SECOND: "-1" }), ConfigError);
    assert.throws(() => loadConfig({ CORRAL_JOB_MIN_TOKENS_PER_SECOND: "fast" }), ConfigError);
  });

  test("prompt-prefix reuse is on unless CORRAL_PREFIX_REUSE is false", () => {
    assert.equal(loadConfig({ CORRAL_PREFIX_REUSE: "false" }).prefixReuse, false);
    assert.equal(loadConfig({ CORRAL_PREFIX_REUSE: "true" }).prefixReuse, true);
    assert.throws(
      () => loadConfig({ CORRAL_PREFIX_REUSE: "sometimes" }),
      (error: unknown) => error instanceof ConfigError && error.variable === "CORRAL_PREFIX_REUSE",
    );
  });

  test("a bad value names the variable", () => {
    for (const [name, value] of [
      ["CORRAL_GPUS", "first"],
      ["CORRAL_CPU_SLOTS", "0"],
      ["CORRAL_VRAM_RESERVE", "lots"],
      ["CORRAL_LOCK_DURATION_MS", "10"],
      ["CORRAL_WORKER_ID", "has space"],
    ] as const) {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (error: unknown) => error instanceof ConfigError && error.variable === name,
        name,
      );
    }
  });

  test("WORKER_ENV documents every variable the worker reads, once", () => {
    const names = WORKER_ENV.map((entry) => entry.name);
    assert.equal(new Set(names).size, names.length);
    for (const name of names) assert.match(name, /^CORRAL_[A-Z_]+$/);
    // Every documented variable is accepted; an unknown one is ignored.
    const everything = Object.fromEntries(
      WORKER_ENV.filter((e) => e.default !== null).map((e) => [e.name, e.default!]),
    );
    const config = loadConfig(everything);
    assert.deepEqual(config, { ...loadConfig({}), workerId: config.workerId });
  });
});

describe("worker metrics bind address", () => {
  test("CORRAL_WORKER_METRICS_HOST: 0.0.0.0 by default (Prometheus scrapes from elsewhere), settable", () => {
    assert.equal(loadConfig({ CORRAL_WORKER_ID: "box-1" }).metricsHost, "0.0.0.0");
    assert.equal(
      loadConfig({ CORRAL_WORKER_ID: "box-1", CORRAL_WORKER_METRICS_HOST: "127.0.0.1" }).metricsHost,
      "127.0.0.1",
    );
    assert.throws(() => loadConfig({ CORRAL_WORKER_METRICS_HOST: "not a host" }), /CORRAL_WORKER_METRICS_HOST/);
  });
});
