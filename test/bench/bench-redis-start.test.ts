import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { pathToFileURL } from "node:url";
import { join } from "node:path";
import getPort from "get-port";
import { repoRootDir } from "../support/models.js";

// Issue 21, item 7: `npm run bench` printed "[ioredis] Unhandled error event: … ECONNREFUSED"
// at start. The cause was waitForRedis's probe clients, which had no 'error' listener while
// the bench's redis-server was still starting: each refused connect was also emitted as
// an event and printed. This runs the same wait, against a port where nothing listens,
// then a real start, in a child process, and reads its stderr.

function run(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: repoRootDir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("the bench's Redis start", () => {
  test("waiting for a redis-server that is not up yet prints no unhandled ioredis error", async () => {
    const closed = await getPort({ host: "127.0.0.1" });
    const redis = pathToFileURL(join(repoRootDir, "test/support/redis.ts")).href;
    const { code, stdout, stderr } = await run(`
      import { startRedisServer, waitForRedis } from ${JSON.stringify(redis)};
      try {
        await waitForRedis("redis://127.0.0.1:${closed}", 400);
        console.log("answered");
      } catch (error) {
        console.log("gave up:", error.message);
      }
      const server = await startRedisServer();
      await server.stop();
      console.log("started and stopped");
    `);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /gave up: Redis at .* did not answer/, "the wait tried and gave up");
    assert.match(stdout, /started and stopped/);
    assert.doesNotMatch(stderr, /Unhandled error event/);
  });
});
