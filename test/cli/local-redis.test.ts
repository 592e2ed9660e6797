import { spawn } from "node:child_process";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { freePort, pingRedis, startLocalRedis } from "@corral/cli";
import { repoRootDir } from "../support/models.js";
import { processExists, waitForExit } from "../support/processes.js";

const gone = (pid: number) => waitForExit(pid, 5000);

describe("the local redis-server of `corral up`", () => {
  test("starts on a free port, answers PING, and stop() ends it", async () => {
    const redis = await startLocalRedis({ path: process.env.PATH });
    try {
      assert.match(redis.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(await pingRedis(redis.url), true);
      assert.equal(processExists(redis.pid), true);
    } finally {
      await redis.stop();
      await redis.stop(); // idempotent
    }
    assert.equal(await gone(redis.pid), true);
    assert.equal(await pingRedis(redis.url, 300), false);
  });

  test("dies with the process that started it, even on SIGKILL", async () => {
    const script = `
      import { startLocalRedis } from "@corral/cli";
      const redis = await startLocalRedis({ path: process.env.PATH });
      console.log(redis.pid);
      setInterval(() => {}, 1000);
    `;
    const owner = spawn(process.execPath, ["--input-type=module", "-e", script], {
      cwd: repoRootDir,
      stdio: ["ignore", "pipe", "inherit"],
    });
    const pid = await new Promise<number>((resolve, reject) => {
      owner.stdout.once("data", (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
      owner.once("exit", (code) => reject(new Error(`owner exited early (${code})`)));
    });
    assert.equal(processExists(pid), true);
    owner.kill("SIGKILL");
    assert.equal(await gone(pid), true, "redis-server stopped after its owner was killed");
  });

  test("pingRedis answers false where nothing listens", async () => {
    assert.equal(await pingRedis(`redis://127.0.0.1:${await freePort()}`, 500), false);
  });
});
