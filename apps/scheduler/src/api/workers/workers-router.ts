import { Router, type Request, type Response } from "express";
import { principalOf } from "../../auth/authenticate.js";
import type { WorkerRegistry } from "../../workers/worker-registry.js";

/**
 * Mounted at `/v1/workers`: `GET /v1/workers`, the live worker slots of the cluster (any
 * authenticated caller). A tenant sees its own jobs only and no host details; the admin sees all.
 */
export function workersRouter(workers: WorkerRegistry): Router {
  const router = Router();
  router.get("/", async (_req: Request, res: Response) => {
    res.json({ object: "list", data: await workers.listFor(principalOf(res.locals)) });
  });
  return router;
}
