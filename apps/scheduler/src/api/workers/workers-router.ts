import { Router, type Request, type Response } from "express";
import type { WorkerRegistry } from "../../workers/worker-registry.js";

/** `GET /v1/workers`: the live worker slots of the cluster (any authenticated caller). */
export function workersRouter(workers: WorkerRegistry): Router {
  const router = Router();
  router.get("/v1/workers", async (_req: Request, res: Response) => {
    res.json({ object: "list", data: await workers.list() });
  });
  return router;
}
