import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { sharedModelsDir } from "../support/models.js";
import { corralEnv, runCorral } from "../cli/run-corral.js";

/** The scheduler and CLI refuse unsafe configurations before they touch Redis, and never print secrets. */
describe("scheduler startup", () => {
  test("an open API (no keys) on a non-loopback address is refused with how to fix it", async () => {
    const { code, stderr } = await runCorral(
      ["scheduler", "--port", "0"],
      corralEnv({ CORRAL_HOST: "0.0.0.0", CORRAL_REDIS_URL: "redis://127.0.0.1:1" }),
    );
    assert.equal(code, 2, stderr);
    assert.match(stderr, /CORRAL_API_KEYS/);
    assert.match(stderr, /CORRAL_ALLOW_OPEN=true/);
    assert.match(stderr, /127\.0\.0\.1/);
  });

  test("config errors never echo keys or Redis passwords", async () => {
    const cases: Array<[Record<string, string>, string[]]> = [
      [{ CORRAL_API_KEYS: "lab-a:sk-valid-key-0123456789,lab-b:shortkey1" }, ["sk-valid-key-0123456789", "shortkey1"]],
      [{ CORRAL_ADMIN_KEY: "shortsecret" }, ["shortsecret"]],
      [{ CORRAL_REDIS_URL: "http://:hunter2-password@redis:6379" }, ["hunter2-password"]],
    ];
    for (const [env, secrets] of cases) {
      const { code, stderr, stdout } = await runCorral(["scheduler", "--port", "0"], corralEnv(env));
      assert.equal(code, 2, stderr);
      for (const secret of secrets) assert.ok(!(stderr + stdout).includes(secret), `${secret} printed: ${stderr}`);
    }
  });

  test("corral doctor shows the Redis URL without its password", { timeout: 60_000 }, async () => {
    const { stdout } = await runCorral(
      ["doctor", "--redis-url", "redis://user:hunter2-password@127.0.0.1:1", "--models-dir", sharedModelsDir()],
      corralEnv({ CORRAL_NVIDIA_SMI: "/nonexistent/nvidia-smi" }),
    );
    assert.ok(!stdout.includes("hunter2-password"), stdout);
    assert.match(stdout, /redis:\/\/user:\*\*\*@127\.0\.0\.1:1/);
  });
});
