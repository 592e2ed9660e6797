import { Router, type Request, type Response } from "express";
import { principalOf } from "../../auth/authenticate.js";
import type { TenantQuotas } from "../../jobs/tenant-quotas.js";

/** Mounted at `/v1/quota`: `GET /v1/quota`, the caller's own tenant's limits and usage. */
export function quotaRouter(quotas: TenantQuotas): Router {
  const router = Router();
  router.get("/", async (_req: Request, res: Response) => {
    res.json(await quotas.of(principalOf(res.locals).tenant));
  });
  return router;
}
