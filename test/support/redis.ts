import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { Redis, type RedisOptions } from "ioredis";
import getPort from "get-port";
import { NO_REDIS_TLS_FILES, RedisKeys, connectRedis } from "@corral/shared";

/**
 * A Redis for tests:
 * 1. `CORRAL_REDIS_URL`, when set;
 * 2. otherwise testcontainers, when a Docker engine answers;
 * 3. otherwise a `redis-server` child on a free port, stopped by PID.
 */
export interface TestRedis {
  url: string;
  stop(): Promise<void>;
}

let shared: Promise<TestRedis> | undefined;

/** One Redis per test process, started on first use. */
export function testRedis(): Promise<TestRedis> {
  shared ??= startTestRedis();
  return shared;
}

async function startTestRedis(): Promise<TestRedis> {
  const fromEnv = process.env.CORRAL_REDIS_URL;
  if (fromEnv) return { url: fromEnv, stop: async () => {} };
  if (dockerAvailable()) {
    try {
      const { GenericContainer } = await import("testcontainers");
      const container = await new GenericContainer("redis:7-alpine").withExposedPorts(6379).start();
      return {
        url: `redis://${container.getHost()}:${container.getMappedPort(6379)}`,
        stop: async () => void (await container.stop()),
      };
    } catch {
      // fall through to a local redis-server
    }
  }
  const server = await startRedisServer();
  // The shared server lives as long as the test process: it must not keep that process
  // alive once the tests are done, and it goes when the process does.
  server.process.unref();
  process.once("exit", () => server.process.kill());
  return { url: server.url, stop: () => server.stop() };
}

function dockerAvailable(): boolean {
  return Boolean(process.env.DOCKER_HOST) || existsSync("/var/run/docker.sock");
}

export interface RedisServer {
  url: string;
  port: number;
  process: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts a throwaway `redis-server` on a free loopback port (no persistence). */
export async function startRedisServer(port?: number): Promise<RedisServer> {
  const chosen = port ?? (await getPort({ host: "127.0.0.1" }));
  const child = spawn(
    "redis-server",
    ["--port", String(chosen), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"],
    { stdio: "ignore" },
  );
  const url = `redis://127.0.0.1:${chosen}`;
  await waitForRedis(url, 5000);
  return {
    url,
    port: chosen,
    process: child,
    stop: (signal: NodeJS.Signals = "SIGTERM") =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill(signal);
      }),
  };
}

export async function waitForRedis(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    // A server still starting refuses the connection: that comes through connect()'s promise,
    // and without a listener ioredis would also print it as an unhandled 'error' event.
    client.on("error", () => undefined);
    try {
      await client.connect();
      await client.ping();
      client.disconnect();
      return;
    } catch (error) {
      client.disconnect();
      if (Date.now() > deadline)
        throw new Error(`Redis at ${url} did not answer within ${timeoutMs} ms`, { cause: error });
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** A fresh key prefix for one test: `test-<random>`. */
export const uniquePrefix = (label = "test"): string => `${label}-${randomBytes(6).toString("hex")}`;

/** Deletes every key under a prefix (BullMQ lanes included). */
export async function cleanupPrefix(url: string, prefix: string, options: RedisOptions = {}): Promise<void> {
  const client = connectRedis(url, NO_REDIS_TLS_FILES, { maxRetriesPerRequest: 1, ...options });
  // A failure comes through the commands below; without a listener it would also be printed.
  client.on("error", () => undefined);
  try {
    const pattern = new RedisKeys(prefix).all;
    let cursor = "0";
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", pattern, "COUNT", 500);
      cursor = next;
      if (keys.length) await client.unlink(...keys);
    } while (cursor !== "0");
  } finally {
    client.disconnect();
  }
}

/**
 * A MONITOR connection to `url`, and the plain client it was made from (disconnect both).
 * ioredis reads a command that another client sends right as MONITOR starts, arriving in
 * the same packet as MONITOR's OK, as a reply to nothing and emits "Command queue state
 * error"; that one line is lost and monitoring goes on, so that error is dropped here. Any
 * other error is thrown on, as it would be with no listener.
 */
export async function startMonitor(url: string): Promise<{ client: Redis; monitor: Redis }> {
  const client = new Redis(url);
  const monitor = await client.monitor();
  monitor.on("error", (error: Error) => {
    if (!error.message.startsWith("Command queue state error")) throw error;
  });
  return { client, monitor };
}
