import { Router, type Request, type Response } from "express";
import { InvalidRequestError, JobRequest } from "@corral/shared";
import { principalOf } from "../../auth/authenticate.js";
import { jsonBody } from "../../http/json-body.js";
import { invalidRequestFromZod } from "../../http/zod-error.js";
import type { JobService } from "../../jobs/job-service.js";
import { parseListQuery, parseWait } from "./job-query.js";
import { bindLog } from "../../http/request-context.js";

export interface JobsRouterOptions {
  jobs: JobService;
  bodyLimitBytes: number;
}

/**
 * The native job API, mounted at `/v1/jobs`: `POST /v1/jobs`, `GET /v1/jobs`,
 * `GET /v1/jobs/:id[?wait=N]`, `DELETE /v1/jobs/:id`.
 */
export function jobsRouter({ jobs, bodyLimitBytes }: JobsRouterOptions): Router {
  const router = Router();

  router.post("/", jsonBody(bodyLimitBytes), async (req: Request, res: Response) => {
    const parsed = JobRequest.safeParse(req.body);
    if (!parsed.success) throw invalidRequestFromZod(parsed.error);
    const { tenant } = principalOf(res.locals);
    const record = await jobs.submit(tenant, parsed.data, { source: "native" });
    bindLog(res, { job_id: record.id });
    res.status(202).location(`/v1/jobs/${record.id}`).json(record);
  });

  router.get("/", async (req: Request, res: Response) => {
    const { tenant } = principalOf(res.locals);
    res.json(await jobs.list(tenant, parseListQuery(req.query)));
  });

  router.get("/:id", async (req: Request, res: Response) => {
    const id = param(req, "id");
    const { tenant } = principalOf(res.locals);
    bindLog(res, { job_id: id });
    const waitSeconds = parseWait(req.query.wait);
    if (waitSeconds === 0) {
      res.json(await jobs.get(tenant, id));
      return;
    }
    // Long poll: answer when the job goes final, after `wait` seconds, or never (client gone).
    const gone = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) gone.abort();
    };
    res.on("close", onClose);
    try {
      const record = await jobs.waitForFinal(tenant, id, waitSeconds * 1000, gone.signal);
      if (!gone.signal.aborted) res.json(record);
    } finally {
      res.off("close", onClose);
    }
  });

  router.delete("/:id", async (req: Request, res: Response) => {
    const id = param(req, "id");
    const { tenant } = principalOf(res.locals);
    bindLog(res, { job_id: id });
    res.json(await jobs.cancel(tenant, id));
  });

  return router;
}

function param(req: Request, name: string): string {
  const value = req.params[name];
  if (typeof value !== "string") throw new InvalidRequestError(`Missing \`${name}\`.`, name);
  return value;
}
