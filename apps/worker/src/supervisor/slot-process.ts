import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { WorkerConfig } from "../env.js";
import type { SlotMessage, SlotSpec, SupervisorMessage } from "../slot/types.js";

export interface SlotProcessOptions {
  spec: SlotSpec;
  config: WorkerConfig;
  /** The compiled slot entry (`slot-main.js`), or its `.ts` source under tsx. */
  entry: string;
  /** node flags for the child. */
  execArgv: string[];
  /** The child's whole environment. */
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** First restart delay after a crash, doubling per crash. @defaultValue 1000 */
  restartInitialMs?: number;
  /** @defaultValue 30000 */
  restartMaxMs?: number;
  /** A slot that stayed up this long resets the backoff. @defaultValue 60000 */
  stableAfterMs?: number;
  /** Extra time after CORRAL_DRAIN_MS before a stopping slot is killed. @defaultValue 15000 */
  killGraceMs?: number;
}

export type SlotProcessState = "starting" | "running" | "backoff" | "stopping" | "stopped";

/**
 * One slot's child process (`child_process.fork`). It sends the slot its spec and the
 * config over IPC, restarts it with exponential backoff when it dies (the supervisor puts
 * its active jobs back on `exit`: `SlotRecovery`), relays metrics requests, and on
 * `stop()` sends SIGTERM and waits while the slot drains (SIGKILL past drain + grace).
 *
 * Each process gets its own lock token prefix, `<slot id>:<pid>:<random>:`: unique even
 * where pids repeat (containers), so the jobs it held are found by it and no other's.
 *
 * A slot that retires (asked by `retire()`, or a group slot idle past keep-alive, which
 * says "retiring" first) is not restarted: its exit is expected, like one after `stop()`.
 *
 * Events: `ready` (each time a process reports ready), `exit` (code, signal, expected,
 * the lock token prefix of the process that exited; a slot retired while waiting to
 * restart emits it with no code, signal or prefix).
 */
export class SlotProcess extends EventEmitter {
  readonly spec: SlotSpec;
  readonly #o: Required<SlotProcessOptions>;
  readonly #log: Logger;
  #child: ChildProcess | null = null;
  #state: SlotProcessState = "starting";
  #restarts = 0;
  #backoffMs: number;
  #restartTimer: NodeJS.Timeout | null = null;
  #startedAt = 0;
  #requests = new Map<number, (metrics: unknown[] | null) => void>();
  #nextRequest = 0;
  #stopping: Promise<void> | null = null;
  #retiring = false;
  readonly #tokenPrefixes = new WeakMap<ChildProcess, string>();

  constructor(options: SlotProcessOptions) {
    super();
    this.#o = { restartInitialMs: 1000, restartMaxMs: 30_000, stableAfterMs: 60_000, killGraceMs: 15_000, ...options };
    this.spec = options.spec;
    this.#log = options.logger.child({ component: "supervisor", slot: options.spec.id });
    this.#backoffMs = this.#o.restartInitialMs;
  }

  get state(): SlotProcessState {
    return this.#state;
  }

  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  get restarts(): number {
    return this.#restarts;
  }

  start(): void {
    if (this.#stopping || this.#child) return;
    this.#state = "starting";
    this.#startedAt = Date.now();
    const child = fork(this.#o.entry, [], {
      env: this.#o.env,
      execArgv: this.#o.execArgv,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      serialization: "json",
    });
    this.#child = child;
    const lockTokenPrefix = `${this.spec.id}:${child.pid}:${randomBytes(6).toString("hex")}:`;
    this.#tokenPrefixes.set(child, lockTokenPrefix);
    child.on("message", (message: SlotMessage) => this.#onMessage(message));
    child.on("error", (error) => this.#log.error({ err: error }, "slot process error"));
    child.once("exit", (code, signal) => this.#onExit(child, code, signal));
    const start: SupervisorMessage = { type: "start", config: this.#o.config, slot: this.spec, lockTokenPrefix };
    child.send(start, (error) => {
      if (error) this.#log.warn({ err: error }, "could not send the start message");
    });
    this.#log.info({ pid: child.pid, entry: this.#o.entry }, "started slot process");
  }

  /** The slot's `registry.getMetricsAsJSON()`, or null when it does not answer in time. */
  metrics(timeoutMs = 2000): Promise<unknown[] | null> {
    const child = this.#child;
    if (!child?.connected || this.#state !== "running") return Promise.resolve(null);
    const requestId = ++this.#nextRequest;
    return new Promise((done) => {
      const timer = setTimeout(() => {
        this.#requests.delete(requestId);
        done(null);
      }, timeoutMs);
      this.#requests.set(requestId, (metrics) => {
        clearTimeout(timer);
        this.#requests.delete(requestId);
        done(metrics);
      });
      const request: SupervisorMessage = { type: "metrics-request", requestId };
      child.send(request, (error) => {
        if (error) this.#requests.get(requestId)?.(null);
      });
    });
  }

  /**
   * Asks the slot to exit at its next idle moment (no job running), for its GPU to join a
   * group; it is not restarted. `stop()` still stops it at once.
   */
  retire(): void {
    if (this.#stopping || this.#retiring) return;
    this.#retiring = true;
    const child = this.#child;
    if (child?.connected) {
      const message: SupervisorMessage = { type: "retire" };
      child.send(message, (error) => {
        if (error) this.#log.warn({ err: error }, "could not send the retire message");
      });
      this.#log.info("asked the slot to retire at its next idle moment");
      return;
    }
    // Not running (waiting to restart after a crash): it is done now.
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    this.#restartTimer = null;
    this.#state = "stopped";
    queueMicrotask(() => this.emit("exit", null, null, true, undefined));
  }

  /** SIGTERM, then wait for the drain; SIGKILL after CORRAL_DRAIN_MS + grace. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    this.#restartTimer = null;
    const child = this.#child;
    this.#state = "stopping";
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((done) => child.once("exit", () => done()));
      child.kill("SIGTERM");
      const limit = this.#o.config.drainMs + this.#o.killGraceMs;
      const timer = setTimeout(() => {
        this.#log.warn({ limitMs: limit }, "slot did not stop in time; killing it");
        child.kill("SIGKILL");
      }, limit);
      await exited;
      clearTimeout(timer);
    }
    this.#state = "stopped";
  }

  #onMessage(message: SlotMessage): void {
    if (message.type === "ready") {
      this.#state = "running";
      this.emit("ready");
    } else if (message.type === "metrics") {
      this.#requests.get(message.requestId)?.(message.metrics);
    } else if (message.type === "fatal") {
      this.#log.error({ reason: message.message }, "slot failed to start");
    } else if (message.type === "retiring") {
      this.#retiring = true;
      this.#log.info({ why: message.why }, "slot retiring");
    }
  }

  #onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#child === child) this.#child = null;
    for (const resolve of this.#requests.values()) resolve(null);
    this.#requests.clear();
    const expected = this.#stopping !== null || this.#retiring;
    this.emit("exit", code, signal, expected, this.#tokenPrefixes.get(child));
    if (expected) {
      this.#log.info({ code, signal }, "slot process exited");
      if (this.#stopping === null) this.#state = "stopped";
      return;
    }
    if (Date.now() - this.#startedAt >= this.#o.stableAfterMs) this.#backoffMs = this.#o.restartInitialMs;
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, this.#o.restartMaxMs);
    this.#restarts += 1;
    this.#state = "backoff";
    this.#log.error({ code, signal, restartInMs: delay }, "slot process died; restarting");
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null;
      this.start();
    }, delay);
  }
}
