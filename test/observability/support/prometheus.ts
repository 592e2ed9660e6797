import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import getPort from "get-port";

/** Whether a `prometheus` binary is on the PATH (CI installs the Debian package). */
export function prometheusAvailable(): boolean {
  return spawnSync("prometheus", ["--version"], { stdio: "ignore" }).status === 0;
}

export interface ScrapeJob {
  job: string;
  /** host:port pairs. */
  targets: string[];
  /** @defaultValue "/metrics" */
  metricsPath?: string;
}

export interface PrometheusOptions {
  jobs: ScrapeJob[];
  /** @defaultValue 1 */
  scrapeIntervalSeconds?: number;
}

export interface QueryResult {
  status: "success" | "error";
  error?: string;
  errorType?: string;
  data?: { resultType: string; result: Array<{ metric: Record<string, string>; value?: [number, string] }> };
}

interface TargetInfo {
  labels: Record<string, string>;
  health: "up" | "down" | "unknown";
  lastScrape: string;
  lastError: string;
}

/** A real Prometheus, in a temporary folder, on a free loopback port. */
export class RunningPrometheus {
  readonly url: string;
  readonly #child: ChildProcess;
  readonly #dir: string;
  readonly #log: string[];
  #closed: Promise<void> | null = null;

  private constructor(url: string, child: ChildProcess, dir: string, log: string[]) {
    this.url = url;
    this.#child = child;
    this.#dir = dir;
    this.#log = log;
  }

  static async start(options: PrometheusOptions): Promise<RunningPrometheus> {
    const interval = options.scrapeIntervalSeconds ?? 1;
    const dir = await mkdtemp(join(tmpdir(), "corral-prometheus-"));
    const config = [
      "global:",
      `  scrape_interval: ${interval}s`,
      `  evaluation_interval: ${interval}s`,
      "scrape_configs:",
      ...options.jobs.flatMap((job) => [
        `  - job_name: ${JSON.stringify(job.job)}`,
        `    metrics_path: ${JSON.stringify(job.metricsPath ?? "/metrics")}`,
        `    scrape_timeout: ${interval}s`,
        "    static_configs:",
        `      - targets: ${JSON.stringify(job.targets)}`,
      ]),
    ].join("\n");
    await writeFile(join(dir, "prometheus.yml"), config + "\n");
    const port = await getPort({ host: "127.0.0.1" });
    const log: string[] = [];
    const child = spawn(
      "prometheus",
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const keep = (chunk: Buffer) => {
      log.push(chunk.toString());
      if (log.length > 200) log.shift();
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    const prometheus = new RunningPrometheus(`http://127.0.0.1:${port}`, child, dir, log);
    try {
      await prometheus.#waitReady(30_000);
    } catch (error) {
      await prometheus.close();
      throw error;
    }
    return prometheus;
  }

  async #waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.#child.exitCode !== null) throw new Error(`prometheus exited: ${this.log()}`);
      try {
        if ((await fetch(`${this.url}/-/ready`)).ok) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`prometheus was not ready within ${timeoutMs} ms: ${this.log()}`);
  }

  /** Prometheus's own log (warnings and errors), for failure messages. */
  log(): string {
    return this.#log.join("").slice(-4000);
  }

  /** An instant query through the HTTP API, as Grafana runs it. */
  async query(expr: string): Promise<QueryResult> {
    const res = await fetch(`${this.url}/api/v1/query`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ query: expr }).toString(),
    });
    return (await res.json()) as QueryResult;
  }

  /** Metric metadata (HELP/TYPE) Prometheus has seen in scrapes, by metric name. */
  async metadata(metric: string): Promise<Array<{ type: string; help: string }>> {
    const res = await fetch(`${this.url}/api/v1/metadata?metric=${encodeURIComponent(metric)}`);
    const body = (await res.json()) as { data?: Record<string, Array<{ type: string; help: string }>> };
    return body.data?.[metric] ?? [];
  }

  async targets(): Promise<TargetInfo[]> {
    const res = await fetch(`${this.url}/api/v1/targets?state=active`);
    const body = (await res.json()) as { data: { activeTargets: TargetInfo[] } };
    return body.data.activeTargets;
  }

  /**
   * Waits until every target has been scraped successfully `scrapes` times after `since`
   * (so counters that changed before `since` have two samples to take a rate over).
   */
  async waitForScrapes(since: number, scrapes: number, intervalSeconds: number, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: TargetInfo[] = [];
    while (Date.now() < deadline) {
      last = await this.targets();
      const ready =
        last.length > 0 &&
        last.every(
          (t) => t.health === "up" && Date.parse(t.lastScrape) >= since + (scrapes - 1) * intervalSeconds * 1000,
        );
      if (ready) return;
      await sleep(200);
    }
    const summary = last.map((t) => `${t.labels.job} ${t.labels.instance}: ${t.health} ${t.lastError}`).join("; ");
    throw new Error(`targets were not scraped ${scrapes} times within ${timeoutMs} ms: ${summary}`);
  }

  /** Stops Prometheus (SIGTERM, then SIGKILL after 10 s) and removes its folder. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      const child = this.#child;
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(this.#dir, { recursive: true, force: true });
    })();
    return this.#closed;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
