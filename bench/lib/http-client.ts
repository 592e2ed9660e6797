import { Agent, request } from "node:http";

export interface HttpResponse<T> {
  status: number;
  body: T;
}

/**
 * A small JSON client on keep-alive agents (lower and steadier client overhead than
 * fetch, which matters when the client shares two cores with the server). Long polls
 * get their own agent with no socket limit, so hundreds of open polls never hold a
 * submit back in the agent's queue.
 */
export class JsonClient {
  readonly #base: URL;
  readonly #agent: Agent;
  readonly #pollAgent: Agent;
  readonly #headers: Readonly<Record<string, string>>;

  /** `headers` go with every request (e.g. a tenant's `authorization`). */
  constructor(baseUrl: string, maxSockets = 64, headers: Readonly<Record<string, string>> = {}) {
    this.#base = new URL(baseUrl);
    this.#headers = headers;
    this.#agent = new Agent({ keepAlive: true, maxSockets });
    this.#pollAgent = new Agent({ keepAlive: true });
  }

  post<T>(path: string, body: unknown): Promise<HttpResponse<T>> {
    return this.#send(this.#agent, "POST", path, JSON.stringify(body));
  }

  get<T>(path: string): Promise<HttpResponse<T>> {
    return this.#send(this.#agent, "GET", path, null);
  }

  /** A POST that may be held open by the server (`POST /v1/jobs?wait=`), on the long polls' agent. */
  longPost<T>(path: string, body: unknown): Promise<HttpResponse<T>> {
    return this.#send(this.#pollAgent, "POST", path, JSON.stringify(body));
  }

  /** A GET that may be held open by the server (`?wait=`). */
  longPoll<T>(path: string): Promise<HttpResponse<T>> {
    return this.#send(this.#pollAgent, "GET", path, null);
  }

  close(): void {
    this.#agent.destroy();
    this.#pollAgent.destroy();
  }

  async #send<T>(agent: Agent, method: string, path: string, payload: string | null): Promise<HttpResponse<T>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#once<T>(agent, method, path, payload);
      } catch (error) {
        // A kept-alive socket the server closed just as it was reused: the request never
        // reached the server, so sending it again is safe (node's documented pattern).
        // A few times: after a run of hundreds of long polls, the next socket taken from
        // the pool can be one the server is closing too.
        if ((error as { reusedSocket?: boolean }).reusedSocket && attempt < 4) continue;
        throw error;
      }
    }
  }

  #once<T>(agent: Agent, method: string, path: string, payload: string | null): Promise<HttpResponse<T>> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { ...this.#headers, accept: "application/json" };
      if (payload !== null) {
        headers["content-type"] = "application/json";
        headers["content-length"] = Buffer.byteLength(payload);
      }
      const req = request(
        {
          host: this.#base.hostname,
          port: this.#base.port,
          path,
          method,
          headers,
          agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("error", reject);
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            try {
              resolve({ status: res.statusCode ?? 0, body: (text ? JSON.parse(text) : null) as T });
            } catch (error) {
              reject(
                new Error(`${method} ${path}: ${res.statusCode} with a body that is not JSON: ${text.slice(0, 200)}`, {
                  cause: error,
                }),
              );
            }
          });
        },
      );
      req.on("error", (error: NodeJS.ErrnoException) => {
        if (req.reusedSocket && error.code === "ECONNRESET") Object.assign(error, { reusedSocket: true });
        reject(error);
      });
      if (payload !== null) req.write(payload);
      req.end();
    });
  }
}
