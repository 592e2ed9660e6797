import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";

/**
 * The "hello world" reference of the HTTP submit benchmark: a bare express 5 app in the
 * scheduler's own process, `POST /hello` parsing the same JSON body a job submit sends
 * and answering a small JSON object. It is the floor for a JSON POST on this machine
 * with this framework; everything Corral adds on top (request ids and logging, metrics,
 * auth, validation, Redis) is what the ratio measures.
 */
export async function startHelloServer(host = "127.0.0.1"): Promise<{ url: string; close(): Promise<void> }> {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.post("/hello", express.json(), (_req, res) => {
    res.status(202).json({ object: "hello", status: "queued" });
  });
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
