import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { ConfigError } from "../errors/corral-error.js";
import {
  COMMON_ENV,
  CommonEnv,
  apiKeys,
  byteSize,
  commonConfig,
  duration,
  flagToVariable,
  parseEnv,
  port,
  variableToFlag,
} from "./env.js";

describe("config helpers", () => {
  test("CommonEnv applies defaults", () => {
    assert.deepEqual(parseEnv(CommonEnv, {}), {
      CORRAL_REDIS_URL: "redis://127.0.0.1:6379",
      CORRAL_PREFIX: "corral",
      CORRAL_MODELS_DIR: "./models",
      CORRAL_LOG_LEVEL: "info",
      CORRAL_INTERACTIVE_LEASE_MS: 10_000,
      CORRAL_REDIS_ALLOW_EVICTION: false,
    });
  });

  test("a bad value names the variable, what it expects and what it got", () => {
    const schema = z.object({ CORRAL_PORT: port.default(8080) });
    assert.throws(
      () => parseEnv(schema, { CORRAL_PORT: "abc" }),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.variable === "CORRAL_PORT" &&
        /expected an integer from 0 to 65535/.test(error.message) &&
        error.message.includes('"abc"'),
    );
    assert.throws(
      () => parseEnv(CommonEnv, { CORRAL_REDIS_URL: "localhost" }),
      /CORRAL_REDIS_URL: expected a Redis URL/,
    );
  });

  test("byte sizes accept plain numbers and units", () => {
    const parse = (v: string) => byteSize.parse(v);
    assert.equal(parse("1048576"), 1048576);
    assert.equal(parse("512MiB"), 512 * 1024 ** 2);
    assert.equal(parse("20GiB"), 20 * 1024 ** 3);
    assert.equal(parse("1.5GB"), 1.5 * 1024 ** 3);
    assert.throws(() => parse("lots"));
  });

  test("durations accept milliseconds and ms-style strings", () => {
    assert.equal(duration.parse("30000"), 30000);
    assert.equal(duration.parse("30s"), 30000);
    assert.equal(duration.parse("5m"), 300000);
    assert.throws(() => duration.parse("soon"));
  });

  test("API keys parse as tenant:key pairs and reject short keys", () => {
    assert.deepEqual(apiKeys.parse("lab-a:0123456789abcdef,lab-b:fedcba9876543210"), [
      { tenant: "lab-a", key: "0123456789abcdef" },
      { tenant: "lab-b", key: "fedcba9876543210" },
    ]);
    assert.throws(() => apiKeys.parse("lab-a:short"));
    assert.throws(() => apiKeys.parse("nokeyhere0123456789"));
  });

  test("flags and variables map both ways", () => {
    assert.equal(flagToVariable("--redis-url"), "CORRAL_REDIS_URL");
    assert.equal(variableToFlag("CORRAL_VRAM_RESERVE"), "--vram-reserve");
  });
});

describe("COMMON_ENV and commonConfig", () => {
  test("COMMON_ENV documents CommonEnv variables, with defaults that parse to the defaults", () => {
    const names = COMMON_ENV.map((v) => v.name);
    assert.equal(new Set(names).size, names.length);
    for (const name of names) assert.ok(name in CommonEnv.shape, name);
    const documented = Object.fromEntries(
      COMMON_ENV.filter((v) => v.default !== null).map((v) => [v.name, v.default!]),
    );
    assert.deepEqual(commonConfig(parseEnv(CommonEnv, documented)), commonConfig(parseEnv(CommonEnv, {})));
  });

  test("commonConfig maps the Redis TLS files and keeps the interactive lease at 1 s or more", () => {
    const config = commonConfig(
      parseEnv(CommonEnv, {
        CORRAL_REDIS_URL: "rediss://redis:6380",
        CORRAL_REDIS_TLS_CA: "/etc/ca.pem",
        CORRAL_REDIS_ALLOW_EVICTION: "true",
        CORRAL_INTERACTIVE_LEASE_MS: "200",
      }),
    );
    assert.deepEqual(config.redisTls, { ca: "/etc/ca.pem", cert: null, key: null });
    assert.equal(config.redisAllowEviction, true);
    assert.equal(config.interactiveLeaseMs, 1000);
    assert.equal(config.redisUrl, "rediss://redis:6380");
  });
});
