import { Router, type Request, type Response } from "express";
import { z } from "zod";
import { InvalidRequestError } from "@corral/shared";
import { principalOf } from "../../auth/authenticate.js";
import { jsonBody } from "../../http/json-body.js";
import { invalidRequestFromZod } from "../../http/zod-error.js";
import type { BatchService } from "../../batches/batch-service.js";
import { bindLog } from "../../http/request-context.js";

const digits = (value: unknown): unknown =>
  typeof value === "string" && /^\d{1,6}$/.test(value) ? Number(value) : value;

const ListQuery = z.object({
  limit: z.preprocess(digits, z.number().int().min(1).max(100)).optional(),
  after: z.string().optional(),
});

export interface BatchesRouterOptions {
  batches: BatchService;
  bodyLimitBytes: number;
}

/**
 * OpenAI's batches API, mounted at `/v1/batches`: `POST /v1/batches`, `GET /v1/batches`,
 * `GET /v1/batches/:id`, `POST /v1/batches/:id/cancel`.
 */
export function batchesRouter({ batches, bodyLimitBytes }: BatchesRouterOptions): Router {
  const router = Router();

  router.post("/", jsonBody(bodyLimitBytes), async (req: Request, res: Response) => {
    const { tenant } = principalOf(res.locals);
    const batch = await batches.create(tenant, req.body);
    bindLog(res, { batch_id: batch.id });
    res.json(batch);
  });

  router.get("/", async (req: Request, res: Response) => {
    const { tenant } = principalOf(res.locals);
    const parsed = ListQuery.safeParse(req.query);
    if (!parsed.success) throw invalidRequestFromZod(parsed.error);
    const options: { limit?: number; after?: string } = {};
    if (parsed.data.limit !== undefined) options.limit = parsed.data.limit;
    if (parsed.data.after !== undefined) options.after = parsed.data.after;
    res.json(await batches.list(tenant, options));
  });

  router.get("/:id", async (req: Request, res: Response) => {
    const { tenant } = principalOf(res.locals);
    res.json(await batches.get(tenant, param(req, "id")));
  });

  router.post("/:id/cancel", async (req: Request, res: Response) => {
    const { tenant } = principalOf(res.locals);
    const id = param(req, "id");
    bindLog(res, { batch_id: id });
    res.json(await batches.cancel(tenant, id));
  });

  return router;
}

function param(req: Request, name: string): string {
  const value = req.params[name];
  if (typeof value !== "string") throw new InvalidRequestError(`Missing \`${name}\`.`, name);
  return value;
}
