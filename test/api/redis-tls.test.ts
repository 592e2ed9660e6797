import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import getPort from "get-port";
import { pino } from "pino";
import { connectRedis, redisConnectionOptions } from "@corral/shared";
import { loadConfig as loadWorkerConfig, startWorker, type RunningWorker } from "@corral/worker";
import { startApi, tempModelsDir, type ApiHarness } from "./harness.js";

const PASSWORD = "tls-test-password";

/** A private CA and a server certificate for 127.0.0.1 signed by it, made with openssl. */
async function makeCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const at = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "ignore" });
  openssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=corral-test-ca",
    "-keyout",
    at("ca.key"),
    "-out",
    at("ca.crt"),
  );
  openssl(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=127.0.0.1",
    "-keyout",
    at("redis.key"),
    "-out",
    at("redis.csr"),
  );
  await writeFile(at("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  openssl(
    "x509",
    "-req",
    "-in",
    at("redis.csr"),
    "-CA",
    at("ca.crt"),
    "-CAkey",
    at("ca.key"),
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    at("san.ext"),
    "-out",
    at("redis.crt"),
  );
  return { ca: at("ca.crt"), cert: at("redis.crt"), key: at("redis.key") };
}

describe("Redis over TLS with AUTH (rediss://, a private CA)", () => {
  let dir: string;
  let certs: { ca: string; cert: string; key: string };
  let server: ChildProcess;
  let url: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "corral-redis-tls-"));
    certs = await makeCertificates(dir);
    const port = await getPort({ host: "127.0.0.1" });
    // TLS only (no plain port), clients need the password but no certificate of their own.
    server = spawn(
      "redis-server",
      [
        "--port",
        "0",
        "--tls-port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--tls-cert-file",
        certs.cert,
        "--tls-key-file",
        certs.key,
        "--tls-ca-cert-file",
        certs.ca,
        "--tls-auth-clients",
        "no",
        "--requirepass",
        PASSWORD,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
      ],
      { stdio: "ignore" },
    );
    url = `rediss://:${PASSWORD}@127.0.0.1:${port}`;
    const deadline = Date.now() + 10_000;
    for (;;) {
      const probe = connectRedis(
        url,
        { ca: certs.ca, cert: null, key: null },
        {
          lazyConnect: true,
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
        },
      );
      probe.on("error", () => undefined);
      try {
        await probe.connect();
        if ((await probe.ping()) === "PONG") break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      } finally {
        probe.disconnect();
      }
    }
  });

  after(async () => {
    server?.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });

  test("a scheduler and a CPU worker run a job end to end over TLS with the CA and the password", async () => {
    const models = await tempModelsDir();
    let api: ApiHarness | undefined;
    let worker: RunningWorker | undefined;
    try {
      const env = { CORRAL_REDIS_TLS_CA: certs.ca };
      api = await startApi({
        redisUrl: url,
        env,
        redisOptions: redisConnectionOptions(url, { ca: certs.ca, cert: null, key: null }),
      });
      const workerEnv = {
        CORRAL_REDIS_URL: url,
        CORRAL_REDIS_TLS_CA: certs.ca,
        CORRAL_PREFIX: api.prefix,
        CORRAL_MODELS_DIR: models.dir,
        CORRAL_CPU: "true",
        CORRAL_CPU_SLOTS: "1",
        CORRAL_THREADS: "1",
        CORRAL_WORKER_METRICS_PORT: "0",
        CORRAL_LOG_LEVEL: "silent",
      };
      worker = await startWorker(loadWorkerConfig(workerEnv), {
        logger: pino({ level: "silent" }),
        env: { ...process.env, ...workerEnv },
      });
      const response = await api.request("POST", "/v1/jobs?wait=60", {
        body: { model: "stories260K", prompt: "Once upon a time", max_tokens: 8, temperature: 0 },
      });
      assert.equal(response.status, 200, response.text);
      assert.equal(response.json.status, "succeeded");
      assert.ok(response.json.result.text.length > 0);
    } finally {
      await worker?.close();
      await api?.close();
      await models.remove();
    }
  });

  test("without the CA the certificate is refused; with a wrong password AUTH is refused", async () => {
    await assert.rejects(startApi({ redisUrl: url }), /self[- ]signed|unable to verify|certificate/i);
    const wrong = url.replace(PASSWORD, "not-the-password");
    await assert.rejects(
      startApi({ redisUrl: wrong, env: { CORRAL_REDIS_TLS_CA: certs.ca } }),
      /WRONGPASS|invalid password/i,
    );
  });

  test("a CA file that does not exist fails at start, naming the file", async () => {
    await assert.rejects(
      startApi({ redisUrl: url, env: { CORRAL_REDIS_TLS_CA: join(dir, "missing.pem") } }),
      /cannot read the Redis TLS CA file .*missing\.pem/,
    );
  });
});
