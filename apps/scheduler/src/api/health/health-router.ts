import { Router, type Request, type Response } from "express";
import type { Redis } from "ioredis";
import type { Registry } from "prom-client";
import { createHash, timingSafeEqual } from "node:crypto";
import { AuthenticationError, REDIS_RETRY_AFTER_SECONDS } from "@corral/shared";
import { bearerToken } from "../../auth/api-key-authenticator.js";

export interface HealthRouterOptions {
  redis: Redis;
  registry: Registry;
  /**
   * How long `/readyz` waits for Redis to answer PING.
   * @defaultValue 1000
   */
  readyTimeoutMs?: number;
  /**
   * Bearer token `/metrics` requires (its series name tenants).
   * @defaultValue null (open)
   */
  metricsToken?: string | null;
}

/** `/healthz` (the process is up), `/readyz` (Redis answers) and `/metrics` (open, or behind the metrics token). */
export function healthRouter({
  redis,
  registry,
  readyTimeoutMs = 1000,
  metricsToken = null,
}: HealthRouterOptions): Router {
  const tokenHash = metricsToken === null ? null : sha256(metricsToken);
  const router = Router();

  router.get("/healthz", (_req: Request, res: Response) => {
    res.json({ status: "ok" });
  });

  router.get("/readyz", async (_req: Request, res: Response) => {
    const problem = await pingProblem(redis, readyTimeoutMs);
    if (problem === null) res.json({ status: "ok", checks: { redis: "ok" } });
    else
      res
        .status(503)
        .set("Retry-After", String(REDIS_RETRY_AFTER_SECONDS))
        .json({ status: "unavailable", checks: { redis: problem } });
  });

  router.get("/metrics", async (req: Request, res: Response) => {
    if (tokenHash !== null) {
      const given = bearerToken(req.headers.authorization);
      if (given === null || !timingSafeEqual(sha256(given), tokenHash)) {
        throw new AuthenticationError("/metrics needs the metrics token (CORRAL_METRICS_TOKEN) as a Bearer token.");
      }
    }
    const body = await registry.metrics();
    res.setHeader("content-type", registry.contentType);
    res.send(body);
  });

  return router;
}

const sha256 = (value: string): Buffer => createHash("sha256").update(value, "utf8").digest();

/** null when Redis answers PING in time, otherwise why not. */
async function pingProblem(redis: Redis, timeoutMs: number): Promise<string | null> {
  if (redis.status !== "ready") return `not connected (${redis.status})`;
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`no answer to PING within ${timeoutMs} ms`), timeoutMs);
    });
    const ping = redis.ping().then(
      (reply) => (reply === "PONG" ? null : `unexpected PING reply`),
      (error: unknown) => `PING failed: ${(error as Error).message}`,
    );
    return await Promise.race([ping, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
