import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import express, { type Express } from "express";

/**
 * The hello-world route of the HTTP submit benchmark: `POST /hello` parsing the same JSON
 * body a job submit sends and answering a small JSON object. It is mounted twice:
 * on the scheduler's own server ({@link mountHello}, behind the request context every
 * route there has) and on a bare express app ({@link startHelloServer}).
 */
export function mountHello(app: Express): void {
  app.post("/hello", express.json(), (_req, res) => {
    res.status(202).json({ object: "hello", status: "queued" });
  });
}

/**
 * A bare express 5 app with only the hello-world route, in the scheduler's process on
 * another port: the floor for a JSON POST on this machine with this framework.
 */
export async function startHelloServer(host = "127.0.0.1"): Promise<{ url: string; close(): Promise<void> }> {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  mountHello(app);
  const server: Server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${host}:${port}`,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
