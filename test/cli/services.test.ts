import type { ChildProcess } from "node:child_process";
import { mkdtemp, mkdir, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { cleanupPrefix, testRedis, uniquePrefix } from "../support/redis.js";
import { STORIES, sharedModelsDir } from "../support/models.js";
import { collect, corralEnv, runCorral, spawnCorral } from "./run-corral.js";

/** Resolves once `pattern` appears on the child's stderr; rejects if it exits first. */
function waitForStderr(child: ChildProcess, pattern: RegExp): Promise<string> {
  let stderr = "";
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      stderr += chunk.toString();
      if (pattern.test(stderr)) {
        child.stderr?.off("data", onData);
        child.off("exit", onExit);
        resolve(stderr);
      }
    };
    const onExit = (code: number | null) => reject(new Error(`exited (${code}) before ${pattern}:\n${stderr}`));
    child.stderr?.on("data", onData);
    child.once("exit", onExit);
  });
}

describe("corral scheduler / worker in the foreground", () => {
  let redisUrl: string;
  let prefix: string;
  let root: string;
  let modelsDir: string;
  before(async () => {
    redisUrl = (await testRedis()).url;
    prefix = uniquePrefix("cli");
    root = await mkdtemp(join(tmpdir(), "corral-services-"));
    modelsDir = join(root, "models");
    await mkdir(modelsDir);
    await symlink(join(sharedModelsDir(), `${STORIES}.gguf`), join(modelsDir, `${STORIES}.gguf`));
  });
  after(async () => {
    await cleanupPrefix(redisUrl, prefix);
    await rm(root, { recursive: true, force: true });
  });

  const env = () => corralEnv({ CORRAL_REDIS_URL: redisUrl, CORRAL_MODELS_DIR: modelsDir, CORRAL_LOG_LEVEL: "warn" });

  test("scheduler serves until SIGTERM, then closes and exits 0", { timeout: 60_000 }, async () => {
    const child = spawnCorral(["scheduler", "--port", "0", "--prefix", prefix], env());
    const listening = waitForStderr(child, /scheduler listening on (http:\/\/\S+)/);
    const finished = collect(child);
    const url = /scheduler listening on (http:\/\/\S+)/.exec(await listening)![1]!;
    const models = await runCorral(["models", "--url", url]);
    assert.equal(models.code, 0, models.stderr);
    assert.match(models.stdout, new RegExp(`^${STORIES}\\s`, "m"));
    child.kill("SIGTERM");
    const result = await finished;
    assert.equal(result.code, 0, result.stderr);
  });

  test("worker --cpu runs a CPU slot until SIGTERM, then drains and exits 0", { timeout: 120_000 }, async () => {
    const child = spawnCorral(["worker", "--cpu", "--worker-metrics-port", "0", "--prefix", prefix], env());
    const running = waitForStderr(child, /worker \S+ running; metrics on http:\/\/\S+/);
    const finished = collect(child);
    await running;
    child.kill("SIGTERM");
    const result = await finished;
    assert.equal(result.code, 0, result.stderr);
  });
});
