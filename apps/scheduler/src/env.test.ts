import { describe, test } from "node:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { ConfigError } from "@corral/shared";
import { SCHEDULER_ENV, loadConfig } from "./env.js";

describe("loadConfig", () => {
  test("the defaults", () => {
    const config = loadConfig({});
    assert.deepEqual(config, {
      redisUrl: "redis://127.0.0.1:6379",
      redisWaitReplicas: 0,
      redisWaitTimeoutMs: 1000,
      prefix: "corral",
      redisAllowEviction: false,
      redisCommandTimeoutMs: 5000,
      interactiveLeaseMs: 10000,
      redisTls: { ca: null, cert: null, key: null },
      modelsDir: "./models",
      checkPromptLength: true,
      catalogRescanMs: 30_000,
      catalogWatch: true,
      modelRemovedGraceMs: 10_000,
      logLevel: "info",
      port: 8080,
      host: "127.0.0.1",
      apiKeys: [],
      allowOpen: false,
      adminKey: null,
      bodyLimitBytes: 1024 * 1024,
      requestTimeoutMs: 600_000,
      headersTimeoutMs: 20_000,
      bodyTimeoutMs: 60_000,
      bodyIdleTimeoutMs: 10_000,
      maxConnections: 4096,
      metricsToken: null,
      adminQueuesWritable: false,
      contextSize: 4096,
      sequences: 4,
      maxQueuedPerTenant: 10_000,
      maxQueuedBytesPerTenant: 256 * 1024 * 1024,
      maxActiveBatchesPerTenant: 100,
      maxStreamsPerTenant: 64,
      jobAttempts: 3,
      tenantShares: new Map(),
      tokenBudgets: new Map(),
      audioBudgets: new Map(),
      maxAudioBytes: 25 * 1024 * 1024,
      maxAudioSeconds: 3600,
      audioTtlMs: 3_600_000,
      tenantMaxActive: new Map(),
      fairCreditTokens: 4096,
      dataDir: "./data",
      maxFileBytes: 200 * 1024 * 1024,
      maxFileLines: 1_000_000,
      tenantFileBytes: 10 * 1024 ** 3,
      outputFileTtlMs: 30 * 24 * 3600 * 1000,
      fileSweepMs: 600_000,
      fileOrphanAgeMs: 3_600_000,
      batchChunkLines: 200,
      batchLoopMs: 500,
      batchLeaseMs: 30_000,
      batchCancelGraceMs: 30_000,
    });
  });

  test("SCHEDULER_ENV documents exactly the variables loadConfig reads, with defaults that parse to the defaults", () => {
    const names = SCHEDULER_ENV.map((v) => v.name);
    assert.equal(new Set(names).size, names.length);
    assert.ok(names.every((n) => n.startsWith("CORRAL_")));
    const documented = Object.fromEntries(
      SCHEDULER_ENV.filter((v) => v.default !== null).map((v) => [v.name, v.default as string]),
    );
    assert.deepEqual(loadConfig(documented), loadConfig({}));
    for (const variable of SCHEDULER_ENV) assert.ok(variable.description.length > 10, variable.name);
    // Every documented variable is read: a bad value for it is rejected (or changes the result).
    for (const { name } of SCHEDULER_ENV) {
      let rejected = false;
      let config: unknown;
      try {
        config = loadConfig({ [name]: "!!bad value!!" });
      } catch (error) {
        rejected = error instanceof ConfigError && error.variable === name;
      }
      assert.ok(rejected || JSON.stringify(config) !== JSON.stringify(loadConfig({})), name);
    }
  });

  test("parses every variable", () => {
    const config = loadConfig({
      CORRAL_REDIS_URL: "redis://redis:6380",
      CORRAL_PREFIX: "lab",
      CORRAL_MODELS_DIR: "/srv/models",
      CORRAL_LOG_LEVEL: "debug",
      CORRAL_PORT: "0",
      CORRAL_HOST: "0.0.0.0",
      CORRAL_API_KEYS: "lab-a:sk-aaaaaaaaaaaaaaaa, lab-b:sk-bbbbbbbbbbbbbbbb",
      CORRAL_ADMIN_KEY: "sk-admin-cccccccccccc",
      CORRAL_BODY_LIMIT: "5MiB",
      CORRAL_REQUEST_TIMEOUT_MS: "30s",
      CORRAL_CONTEXT_SIZE: "2048",
      CORRAL_SEQUENCES: "2",
      CORRAL_MAX_QUEUED_PER_TENANT: "50",
      CORRAL_JOB_ATTEMPTS: "5",
      CORRAL_CATALOG_RESCAN_MS: "2m",
      CORRAL_TENANT_SHARES: "lab-a:2, lab-b:0.5",
      CORRAL_FAIR_CREDIT_TOKENS: "0",
      CORRAL_TENANT_TOKENS_PER_DAY: "lab-a:5000000, *:1000",
      CORRAL_TENANT_MAX_ACTIVE: "lab-a:8,*:2",
    });
    assert.equal(config.port, 0);
    assert.equal(config.host, "0.0.0.0");
    assert.deepEqual(config.apiKeys, [
      { tenant: "lab-a", key: "sk-aaaaaaaaaaaaaaaa" },
      { tenant: "lab-b", key: "sk-bbbbbbbbbbbbbbbb" },
    ]);
    assert.equal(config.adminKey, "sk-admin-cccccccccccc");
    assert.equal(config.bodyLimitBytes, 5 * 1024 * 1024);
    assert.equal(config.requestTimeoutMs, 30_000);
    assert.equal(config.contextSize, 2048);
    assert.equal(config.sequences, 2);
    assert.equal(config.maxQueuedPerTenant, 50);
    assert.equal(config.jobAttempts, 5);
    assert.equal(config.catalogRescanMs, 120_000);
    assert.deepEqual(
      config.tenantShares,
      new Map([
        ["lab-a", 2],
        ["lab-b", 0.5],
      ]),
    );
    assert.equal(config.fairCreditTokens, 0);
    assert.deepEqual(
      config.tokenBudgets,
      new Map([
        ["lab-a", 5_000_000],
        ["*", 1000],
      ]),
    );
    assert.deepEqual(
      config.tenantMaxActive,
      new Map([
        ["lab-a", 8],
        ["*", 2],
      ]),
    );
    assert.equal(loadConfig({ CORRAL_CATALOG_RESCAN_MS: "0" }).catalogRescanMs, 0, "0 turns rescans off");
    assert.equal(loadConfig({ CORRAL_CATALOG_RESCAN_MS: "10" }).catalogRescanMs, 1000, "at most one rescan a second");
  });

  for (const [variable, value] of [
    ["CORRAL_PORT", "70000"],
    ["CORRAL_PORT", "http"],
    ["CORRAL_HOST", "not a host"],
    ["CORRAL_API_KEYS", "lab-a:short"],
    ["CORRAL_API_KEYS", "sk-no-tenant-given-here"],
    ["CORRAL_ADMIN_KEY", "short"],
    ["CORRAL_BODY_LIMIT", "lots"],
    ["CORRAL_REQUEST_TIMEOUT_MS", "soon"],
    ["CORRAL_SEQUENCES", "0"],
    ["CORRAL_MAX_QUEUED_PER_TENANT", "-1"],
    ["CORRAL_JOB_ATTEMPTS", "1.5"],
    ["CORRAL_CATALOG_RESCAN_MS", "often"],
    ["CORRAL_TENANT_SHARES", "lab-a:lots"],
    ["CORRAL_TENANT_SHARES", "lab-a:0"],
    ["CORRAL_TENANT_SHARES", "lab-a"],
    ["CORRAL_TENANT_SHARES", "lab a:1"],
    ["CORRAL_TENANT_TOKENS_PER_DAY", "lab-a:1.5"],
    ["CORRAL_TENANT_TOKENS_PER_DAY", "*:0"],
    ["CORRAL_TENANT_TOKENS_PER_DAY", "lab-a"],
    ["CORRAL_TENANT_TOKENS_PER_DAY", "**:5"],
    ["CORRAL_TENANT_MAX_ACTIVE", "lab-a:0"],
    ["CORRAL_TENANT_MAX_ACTIVE", "lab-a:1.5"],
    ["CORRAL_TENANT_MAX_ACTIVE", "lab-a:few"],
    ["CORRAL_FAIR_CREDIT_TOKENS", "-1"],
    ["CORRAL_FAIR_CREDIT_TOKENS", "lots"],
  ] as const) {
    test(`${variable}=${value} → ConfigError naming ${variable}`, () => {
      assert.throws(
        () => loadConfig({ [variable]: value }),
        (error: unknown) =>
          error instanceof ConfigError && error.variable === variable && error.message.includes(variable),
      );
    });
  }

  test("a key shared by two tenants, or equal to the admin key, is rejected", () => {
    assert.throws(
      () => loadConfig({ CORRAL_API_KEYS: "a:sk-same-key-0123456,b:sk-same-key-0123456" }),
      (error: unknown) => error instanceof ConfigError && error.variable === "CORRAL_API_KEYS",
    );
    assert.throws(
      () => loadConfig({ CORRAL_API_KEYS: "a:sk-same-key-0123456", CORRAL_ADMIN_KEY: "sk-same-key-0123456" }),
      (error: unknown) => error instanceof ConfigError && error.variable === "CORRAL_ADMIN_KEY",
    );
  });
});

describe("open mode", () => {
  const refused = (error: unknown) =>
    error instanceof ConfigError &&
    error.variable === "CORRAL_API_KEYS" &&
    error.message.includes("CORRAL_ALLOW_OPEN=true") &&
    error.message.includes("0.0.0.0");

  test("no API keys on a non-loopback address is refused", () => {
    assert.throws(() => loadConfig({ CORRAL_HOST: "0.0.0.0" }), refused);
    assert.throws(() => loadConfig({ CORRAL_HOST: "0.0.0.0", CORRAL_ADMIN_KEY: "sk-admin-0123456789abcdef" }), refused);
    assert.throws(() => loadConfig({ CORRAL_HOST: "10.1.2.3" }));
    assert.throws(() => loadConfig({ CORRAL_HOST: "::" }));
  });

  test("is allowed on loopback, with keys, or with CORRAL_ALLOW_OPEN=true", () => {
    for (const host of ["127.0.0.1", "127.0.0.2", "::1", "localhost"]) {
      assert.equal(loadConfig({ CORRAL_HOST: host }).apiKeys.length, 0, host);
    }
    assert.equal(loadConfig({ CORRAL_HOST: "0.0.0.0", CORRAL_API_KEYS: "lab-a:sk-0123456789abcdef" }).host, "0.0.0.0");
    assert.equal(loadConfig({ CORRAL_HOST: "0.0.0.0", CORRAL_ALLOW_OPEN: "true" }).host, "0.0.0.0");
  });
});

describe("secrets in config errors", () => {
  const messageOf = (env: Record<string, string>): string => {
    try {
      loadConfig(env);
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      return error.message;
    }
    assert.fail("expected a ConfigError");
  };

  test("a bad CORRAL_API_KEYS shows tenants, never keys", () => {
    const message = messageOf({ CORRAL_API_KEYS: "lab-a:sk-valid-key-0123456789,lab-b:shortkey1" });
    assert.ok(!message.includes("sk-valid-key-0123456789"), message);
    assert.ok(!message.includes("shortkey1"), message);
    assert.match(message, /lab-a/);
  });

  test("a bad CORRAL_ADMIN_KEY is not echoed", () => {
    assert.ok(!messageOf({ CORRAL_ADMIN_KEY: "shortsecret" }).includes("shortsecret"));
  });

  test("a bad CORRAL_REDIS_URL is echoed without its password", () => {
    const message = messageOf({ CORRAL_REDIS_URL: "http://:hunter2-password@redis:6379" });
    assert.ok(!message.includes("hunter2-password"), message);
    assert.match(message, /redis:6379/);
  });
});

describe("tenant names and keys files", () => {
  test("the tenant names admin and default are reserved", () => {
    for (const tenant of ["admin", "default", "Admin"]) {
      assert.throws(
        () => loadConfig({ CORRAL_API_KEYS: `${tenant}:sk-0123456789abcdef` }),
        (error: unknown) =>
          error instanceof ConfigError && error.variable === "CORRAL_API_KEYS" && /reserved/.test(error.message),
        tenant,
      );
    }
  });

  test("CORRAL_API_KEYS_FILE reads tenant:key pairs from a file (one a line or comma-separated, # comments)", () => {
    const dir = mkdtempSync(join(tmpdir(), "corral-keys-"));
    const file = join(dir, "keys");
    writeFileSync(
      file,
      "# tenants\nlab-a:sk-aaaaaaaaaaaaaaaa\n\nlab-b:sk-bbbbbbbbbbbbbbbb,lab-c:sk-cccccccccccccccc\n",
    );
    try {
      assert.deepEqual(loadConfig({ CORRAL_API_KEYS_FILE: file, CORRAL_HOST: "0.0.0.0" }).apiKeys, [
        { tenant: "lab-a", key: "sk-aaaaaaaaaaaaaaaa" },
        { tenant: "lab-b", key: "sk-bbbbbbbbbbbbbbbb" },
        { tenant: "lab-c", key: "sk-cccccccccccccccc" },
      ]);
      const missing = join(dir, "nope");
      assert.throws(
        () => loadConfig({ CORRAL_API_KEYS_FILE: missing }),
        (error: unknown) => error instanceof ConfigError && error.variable === "CORRAL_API_KEYS_FILE",
      );
      assert.throws(
        () => loadConfig({ CORRAL_API_KEYS_FILE: file, CORRAL_API_KEYS: "lab-d:sk-dddddddddddddddd" }),
        (error: unknown) => error instanceof ConfigError && error.variable === "CORRAL_API_KEYS_FILE",
      );
      writeFileSync(file, "lab-a:short-secret\n");
      assert.throws(
        () => loadConfig({ CORRAL_API_KEYS_FILE: file }),
        (error: unknown) =>
          error instanceof ConfigError &&
          error.variable === "CORRAL_API_KEYS_FILE" &&
          !error.message.includes("short-secret"),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("connection limits and the metrics token have defaults and can be set", () => {
    const defaults = loadConfig({});
    assert.equal(defaults.headersTimeoutMs, 20_000);
    assert.equal(defaults.bodyTimeoutMs, 60_000);
    assert.equal(defaults.bodyIdleTimeoutMs, 10_000);
    assert.equal(defaults.maxConnections, 4096);
    assert.equal(defaults.metricsToken, null);
    assert.equal(defaults.adminQueuesWritable, false);
    const set = loadConfig({
      CORRAL_HEADERS_TIMEOUT_MS: "5s",
      CORRAL_BODY_TIMEOUT_MS: "2m",
      CORRAL_BODY_IDLE_TIMEOUT_MS: "3s",
      CORRAL_MAX_CONNECTIONS: "100",
      CORRAL_METRICS_TOKEN: "metrics-token-0123456789",
      CORRAL_ADMIN_QUEUES_WRITABLE: "true",
    });
    assert.deepEqual(
      [set.headersTimeoutMs, set.bodyTimeoutMs, set.bodyIdleTimeoutMs, set.maxConnections, set.metricsToken],
      [5000, 120_000, 3000, 100, "metrics-token-0123456789"],
    );
    assert.equal(set.adminQueuesWritable, true);
  });
});
