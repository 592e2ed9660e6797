import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";
import { NO_REDIS_TLS_FILES, connectRedis, type RedisTlsFiles } from "@corral/shared";
import { CliError } from "../errors.js";

/** Whether a Redis answers PING at `url` within `timeoutMs`. */
export async function pingRedis(
  url: string,
  timeoutMs = 1000,
  tls: RedisTlsFiles = NO_REDIS_TLS_FILES,
): Promise<boolean> {
  const client = connectRedis(url, tls, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on("error", () => undefined); // reported through the promise below
  try {
    await client.connect();
    return (await client.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** The first executable `name` on `PATH`, or undefined. */
export function findExecutable(name: string, path: string | undefined): string | undefined {
  for (const dir of (path ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A free loopback TCP port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

export const REDIS_INSTALL_HINT =
  "install Redis (Debian/Ubuntu: `sudo apt-get install redis-server`; macOS: `brew install redis`), " +
  "or point CORRAL_REDIS_URL (--redis-url) at a running Redis";

export interface LocalRedis {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s). Idempotent. */
  stop(): Promise<void>;
}

export interface StartLocalRedisOptions {
  /** `PATH` to search for `redis-server`. */
  path: string | undefined;
  /** @defaultValue a free loopback port */
  port?: number;
  /** @defaultValue 10000 */
  startTimeoutMs?: number;
}

/**
 * Runs redis-server ($0, with "$@") under a small sh guard: a background reader holds the
 * guard's stdin, a pipe from this process, and kills redis-server when it reaches EOF. The
 * pipe closes when this process exits for any reason, SIGKILL included, so no redis-server
 * outlives `corral up`. The guard prints redis-server's pid first, then exits with its status.
 */
const GUARD_SCRIPT =
  'exec 3<&0; "$0" "$@" </dev/null & pid=$!; echo "pid $pid"; ' +
  '(read -r _ <&3; kill "$pid" 2>/dev/null) & wait "$pid"';

/**
 * Starts a throwaway `redis-server` on loopback, without persistence. It stops when
 * `stop()` is called or this process ends, however it ends.
 */
export async function startLocalRedis(options: StartLocalRedisOptions): Promise<LocalRedis> {
  const binary = findExecutable("redis-server", options.path);
  if (!binary) throw new CliError("no Redis answers and `redis-server` is not installed", { hint: REDIS_INSTALL_HINT });
  const port = options.port ?? (await freePort());
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  const guard = spawn("/bin/sh", ["-c", GUARD_SCRIPT, binary, ...args], {
    // Its own process group: a Ctrl-C on the terminal reaches `corral up`, which drains the
    // worker and the scheduler while Redis still answers, and only then stops Redis.
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let output = "";
  const keep = (chunk: Buffer) => void (output = (output + chunk.toString()).slice(-4000));
  guard.stdout?.on("data", keep);
  guard.stderr?.on("data", keep);
  const exited = new Promise<void>((resolve) => guard.once("exit", () => resolve()));
  const spawnError = new Promise<Error>((resolve) => guard.once("error", resolve));

  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
  for (;;) {
    if (guard.exitCode !== null || guard.signalCode !== null) {
      throw new CliError(`redis-server exited at start (code ${guard.exitCode ?? guard.signalCode}): ${output.trim()}`);
    }
    const failed = await Promise.race([spawnError, new Promise<undefined>((r) => setTimeout(() => r(undefined), 100))]);
    if (failed) throw new CliError(`could not start redis-server: ${failed.message}`, { hint: REDIS_INSTALL_HINT });
    if (await pingRedis(url, 500)) break;
    if (Date.now() > deadline) {
      await stopGuard(guard, exited);
      throw new CliError(`redis-server did not answer on ${url}: ${output.trim()}`);
    }
  }
  const pid = Number(/^pid (\d+)$/m.exec(output)?.[1] ?? guard.pid);
  // Stop collecting output once it runs; keep draining the pipes so it never blocks.
  guard.stdout?.removeListener("data", keep).resume();
  guard.stderr?.removeListener("data", keep).resume();

  let stopping: Promise<void> | undefined;
  return { url, port, pid, stop: () => (stopping ??= stopGuard(guard, exited)) };
}

/** Closes the guard's stdin (it then stops redis-server and exits); SIGKILLs the group after 5 s. */
async function stopGuard(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.stdin?.end();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), 5000)));
  if (await Promise.race([exited.then(() => false), timedOut])) {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
    await exited;
  }
  clearTimeout(timer);
}
