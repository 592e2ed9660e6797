import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { STORIES, sharedModelsDir } from "../support/models.js";
import { collect, corralEnv, processExists, runCorral, spawnCorral, type CorralResult } from "./run-corral.js";

/** A loopback port nothing listens on (it was free a moment ago). */
function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

/** A models folder holding only stories260K.gguf (a symlink to the shared copy). */
async function storiesOnlyDir(root: string): Promise<string> {
  const dir = join(root, "models");
  await rm(dir, { recursive: true, force: true });
  await import("node:fs/promises").then((fs) => fs.mkdir(dir, { recursive: true }));
  await symlink(join(sharedModelsDir(), `${STORIES}.gguf`), join(dir, `${STORIES}.gguf`));
  return dir;
}

/** The redis-server pid `corral up` reports on stderr when it starts its own. */
function startedRedisPid(stderr: string): number {
  const match = /started redis-server on redis:\/\/127\.0\.0\.1:\d+ \(pid (\d+)/.exec(stderr);
  assert.ok(match, `corral up started its own redis-server:\n${stderr}`);
  return Number(match[1]);
}

/** Resolves with stdout so far once `pattern` appears in it; rejects if the process ends first. */
function waitForOutput(child: ChildProcess, pattern: RegExp): Promise<string> {
  let stdout = "";
  let stderr = "";
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      stdout += chunk.toString();
      if (pattern.test(stdout)) {
        child.stdout?.off("data", onData);
        child.off("exit", onExit);
        resolve(stdout);
      }
    };
    const onExit = (code: number | null) =>
      reject(new Error(`corral exited (${code}) before printing ${pattern}:\n${stdout}\n${stderr}`));
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("exit", onExit);
  });
}

describe("corral up", () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "corral-up-"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test(
    "--demo starts its own Redis, runs the sample batch, prints completions, slots and tokens/s, exits 0",
    { timeout: 300_000 },
    async () => {
      const modelsDir = await storiesOnlyDir(root);
      const result = await runCorral(
        ["up", "--demo", "--port", "0", "--worker-metrics-port", "0"],
        corralEnv({ CORRAL_MODELS_DIR: modelsDir, CORRAL_REDIS_URL: `redis://127.0.0.1:${await unusedPort()}` }),
      );
      assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
      const { stdout } = result;
      assert.match(stdout, /^Corral is up: http:\/\/127\.0\.0\.1:\d+$/m);
      assert.match(stdout, new RegExp(`^demo: 8 jobs on ${STORIES} \\(max_tokens 48, temperature 0\\.7\\)$`, "m"));
      const jobLines = stdout.split("\n").filter((line) => /^\[\d\/8\] /.test(line));
      assert.equal(jobLines.length, 8, stdout);
      for (const line of jobLines) {
        assert.match(line, / · slot \S+\/cpu · \d+ tokens · [\d.]+ tokens\/s$/, line);
      }
      const completions = stdout.split("\n").filter((line) => /^ {4}\S/.test(line));
      assert.equal(completions.length, 8);
      assert.ok(completions.every((line) => line.trim().length > 0));
      assert.match(stdout, /^demo: 8\/8 succeeded, \d+ tokens in [\d.]+ s → [\d.]+ tokens\/s overall$/m);

      const pid = startedRedisPid(result.stderr);
      assert.match(result.stderr, /stopped worker\nstopped scheduler\nstopped redis-server/);
      assert.equal(processExists(pid), false, "the redis-server it started is gone");
    },
  );

  test("without Redis and without redis-server it says how to install one, exit 1", async () => {
    const result = await runCorral(
      ["up", "--port", "0", "--worker-metrics-port", "0"],
      corralEnv({ PATH: join(root, "empty-bin"), CORRAL_REDIS_URL: `redis://127.0.0.1:${await unusedPort()}` }),
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: no Redis answers and `redis-server` is not installed$/m);
    assert.match(result.stderr, /apt-get install redis-server/);
    assert.match(result.stderr, /brew install redis/);
    assert.match(result.stderr, /CORRAL_REDIS_URL/);
  });

  describe("without --demo, with API keys", () => {
    const key = "sk-lab-a-0123456789abcdef";
    let child: ChildProcess;
    let finished: Promise<CorralResult>;
    let url: string;
    let stderr = "";

    before(async () => {
      const modelsDir = await storiesOnlyDir(root);
      child = spawnCorral(
        ["up", "--port", "0", "--worker-metrics-port", "0", "--api-keys", `lab-a:${key}`],
        corralEnv({ CORRAL_MODELS_DIR: modelsDir, CORRAL_REDIS_URL: `redis://127.0.0.1:${await unusedPort()}` }),
      );
      child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      const ready = waitForOutput(child, /press Ctrl-C to stop/);
      finished = collect(child);
      const stdout = await ready;
      const match = /^Corral is up: (http:\/\/\S+)$/m.exec(stdout);
      assert.ok(match, stdout);
      url = match[1]!;
      assert.match(stdout, new RegExp(`^API key \\(tenant lab-a\\): ${key}$`, "m"));
      assert.match(stdout, /^ID\s+HOST\s+MODE\s+STATE/m);
    });

    after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });

    test("submit --wait prints the completion", { timeout: 120_000 }, async () => {
      const result = await runCorral(
        ["submit", "--wait", "--model", STORIES, "--prompt", "Once upon a time", "--max-tokens", "12"],
        corralEnv({ CORRAL_URL: url, CORRAL_API_KEY: key }),
      );
      assert.equal(result.code, 0, result.stderr);
      assert.ok(result.stdout.trim().length > 0);
      assert.match(result.stderr, /job job_\S+ queued; waiting/);
    });

    test(
      "submit --wait with a messages file, and submit without --wait prints the id",
      { timeout: 120_000 },
      async () => {
        const messages = join(root, "messages.json");
        await writeFile(messages, JSON.stringify([{ role: "user", content: "Tell me about a dog." }]));
        const chat = await runCorral([
          "submit",
          "--url",
          url,
          "--api-key",
          key,
          "--model",
          STORIES,
          "--messages-file",
          messages,
          "--max-tokens",
          "8",
          "--wait",
        ]);
        assert.equal(chat.code, 0, chat.stderr);
        const queued = await runCorral([
          "submit",
          "--url",
          url,
          "--api-key",
          key,
          "--model",
          STORIES,
          "--prompt",
          "The cat",
          "--max-tokens",
          "4",
        ]);
        assert.equal(queued.code, 0, queued.stderr);
        assert.match(queued.stdout.trim(), /^job_\S+$/);
      },
    );

    test("HTTP errors print the server's message and the field, exit 1", async () => {
      const unknown = await runCorral([
        "submit",
        "--url",
        url,
        "--api-key",
        key,
        "--model",
        "no-such-model",
        "--prompt",
        "hi",
      ]);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /^error: POST \/v1\/jobs: 404 .*no-such-model.* \(param: model\)$/m);

      const badTemperature = await runCorral([
        "submit",
        "--url",
        url,
        "--api-key",
        key,
        "--model",
        STORIES,
        "--prompt",
        "hi",
        "--temperature",
        "9",
      ]);
      assert.equal(badTemperature.code, 1);
      assert.match(badTemperature.stderr, /\(param: temperature\)/);

      const noKey = await runCorral(["models", "--url", url]);
      assert.equal(noKey.code, 1);
      assert.match(noKey.stderr, /^error: GET \/v1\/models: 401 /m);
    });

    test("models, workers and quota print tables (and JSON)", async () => {
      const env = corralEnv({ CORRAL_URL: url, CORRAL_API_KEY: key });
      const models = await runCorral(["models"], env);
      assert.equal(models.code, 0, models.stderr);
      assert.match(models.stdout, /^ID\s+FILE\s+ARCH/m);
      assert.match(models.stdout, new RegExp(`^${STORIES}\\s+${STORIES}\\.gguf\\s+llama`, "m"));

      const workers = await runCorral(["workers"], env);
      assert.equal(workers.code, 0, workers.stderr);
      assert.match(
        workers.stdout,
        /^ID\s+HOST\s+MODE\s+STATE\s+GPUS\s+FREE \/ TOTAL\s+LOADED MODELS\s+ACTIVE\s+HEARTBEAT$/m,
      );
      assert.match(workers.stdout, /\scpu\s+(idle|busy|starting)\s/);

      const json = await runCorral(["workers", "--json"], env);
      const list = JSON.parse(json.stdout) as { mode: string }[];
      assert.ok(list.length >= 1);
      assert.equal(list[0]!.mode, "cpu");

      const quota = await runCorral(["quota"], env);
      assert.equal(quota.code, 0, quota.stderr);
      assert.match(quota.stdout, /^tenant\s+lab-a$/m);
      assert.match(quota.stdout, /^queued jobs\s+at most 10,000$/m);
      assert.match(quota.stdout, /^running jobs\s+no limit$/m);
      assert.match(quota.stdout, /^tokens today\s+[\d,]+ \(no daily budget\)$/m);
      assert.match(
        quota.stdout,
        /^fair share\s+share 1, counter -?[\d,]+ \(weighted tokens served; lower goes first\)$/m,
      );
      const quotaJson = JSON.parse((await runCorral(["quota", "--json"], env)).stdout) as { object: string };
      assert.equal(quotaJson.object, "quota");
    });

    test(
      "SIGINT shuts everything down, exits 0, and stops the redis-server it started",
      { timeout: 120_000 },
      async () => {
        const pid = startedRedisPid(stderr);
        assert.equal(processExists(pid), true);
        child.kill("SIGINT");
        const result = await finished;
        assert.equal(result.code, 0, stderr);
        assert.match(stderr, /SIGINT: shutting down/);
        assert.match(stderr, /stopped redis-server/);
        assert.equal(processExists(pid), false);
      },
    );
  });
});
