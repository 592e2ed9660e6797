import { Router, type Request, type Response } from "express";
import { ModelNotFoundError } from "@corral/shared";
import type { ModelCatalogView } from "../../catalog/types.js";
import { toModelObject } from "./model-object.js";

/** Mounted at `/v1/models`: `GET /v1/models` and `GET /v1/models/:id` (ids may contain '/'). */
export function modelsRouter(catalog: ModelCatalogView): Router {
  const router = Router();

  router.get("/", (_req: Request, res: Response) => {
    res.json({ object: "list", data: catalog.list().map(toModelObject) });
  });

  router.get("/*id", (req: Request, res: Response) => {
    const raw = req.params.id;
    const id = Array.isArray(raw) ? raw.join("/") : String(raw);
    const model = catalog.resolve(id);
    if (!model)
      throw new ModelNotFoundError(
        id,
        catalog.list().map((m) => m.id),
      );
    res.json(toModelObject(model));
  });

  return router;
}
