import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { AggregatorRegistry, type Registry } from "prom-client";

export interface MetricsServerOptions {
  port: number;
  /** @defaultValue "0.0.0.0" (Prometheus scrapes from elsewhere) */
  host?: string;
  /** The supervisor's own registry. */
  registry: Registry;
  /** Each running slot's `getMetricsAsJSON()`; slots that do not answer are left out. */
  slotMetrics: () => Promise<unknown[][]>;
  logger: Logger;
}

/**
 * `/metrics` for the whole worker: the slots' registries (fetched over IPC at scrape
 * time) merged with prom-client's `AggregatorRegistry.aggregate`, plus the supervisor's
 * own. Each slot's series carry distinct labels (slot, GPU index), so the default
 * aggregation (sum) only merges series that really are the same. `/healthz` answers 200.
 */
export class MetricsServer {
  readonly #o: MetricsServerOptions;
  readonly #server: Server;
  #closing: Promise<void> | null = null;

  private constructor(options: MetricsServerOptions) {
    this.#o = options;
    this.#server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD" }).end();
        return;
      }
      if (path === "/healthz") {
        res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
        return;
      }
      if (path !== "/metrics") {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found; try /metrics\n");
        return;
      }
      this.render().then(
        ({ body, contentType }) => res.writeHead(200, { "content-type": contentType }).end(body),
        (error: unknown) => {
          options.logger.warn({ err: error }, "rendering /metrics failed");
          res.writeHead(500, { "content-type": "text/plain" }).end("metrics unavailable\n");
        },
      );
    });
  }

  static async listen(options: MetricsServerOptions): Promise<MetricsServer> {
    const server = new MetricsServer(options);
    await new Promise<void>((resolve, reject) => {
      server.#server.once("error", reject);
      server.#server.listen(options.port, options.host ?? "0.0.0.0", () => {
        server.#server.off("error", reject);
        resolve();
      });
    });
    return server;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/metrics`;
  }

  /** The aggregated exposition text. */
  async render(): Promise<{ body: string; contentType: string }> {
    const slots = await this.#o.slotMetrics();
    const own = await this.#o.registry.getMetricsAsJSON();
    const merged = AggregatorRegistry.aggregate([...slots, own]);
    return { body: await merged.metrics(), contentType: merged.contentType };
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    return this.#closing;
  }
}
