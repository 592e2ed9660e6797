import { Router, type Request, type Response } from "express";
import {
  InvalidRequestError,
  JobRequest,
  isFinalStatus,
  reasoningBudget,
  validateJsonSchemaForGrammar,
  type JobRecord,
} from "@corral/shared";
import { principalOf } from "../../auth/authenticate.js";
import { jsonBody } from "../../http/json-body.js";
import { invalidRequestFromZod } from "../../http/zod-error.js";
import type { JobService } from "../../jobs/job-service.js";
import type { QueuePositions } from "../../jobs/queue-positions.js";
import { parseListQuery, parseWait } from "./job-query.js";
import { bindLog } from "../../http/request-context.js";
import type { TenantStreams } from "../connections/tenant-streams.js";
import { jobEarlyHints } from "../openai/corral-headers.js";

export interface JobsRouterOptions {
  jobs: JobService;
  bodyLimitBytes: number;
  /** Each tenant's open long polls (with its streams). @defaultValue no limit */
  streams?: TenantStreams;
  /** Adds a queued job's estimated position and start to its record. @defaultValue none (not shown) */
  positions?: QueuePositions;
}

/**
 * The native job API, mounted at `/v1/jobs`: `POST /v1/jobs[?wait=N]`, `GET /v1/jobs`,
 * `GET /v1/jobs/:id[?wait=N]`, `DELETE /v1/jobs/:id`.
 */
export function jobsRouter({ jobs, bodyLimitBytes, streams, positions }: JobsRouterOptions): Router {
  const router = Router();
  /** A record as the job routes answer with it: a queued job's with its estimated position. */
  const shown = async (record: JobRecord) => (positions ? positions.annotate(record) : record);

  router.post("/", jsonBody(bodyLimitBytes), async (req: Request, res: Response) => {
    // Checked before anything is queued: a bad `wait` is a 400 with no job left behind.
    const waitSeconds = parseWait(req.query.wait);
    const parsed = JobRequest.safeParse(req.body);
    if (!parsed.success) throw invalidRequestFromZod(parsed.error);
    // As on the OpenAI routes: a schema the grammar cannot enforce is a 400 before anything is queued.
    const format = parsed.data.response_format;
    if (format?.type === "json_schema") {
      const problem = validateJsonSchemaForGrammar(format.json_schema.schema);
      if (problem !== null) {
        throw new InvalidRequestError(problem, "response_format.json_schema.schema", "unsupported_schema");
      }
    }
    const { tenant } = principalOf(res.locals);
    // A long poll's place is taken before the job is queued: a 429 leaves no job behind.
    const release = waitSeconds > 0 ? streams?.acquire(tenant) : undefined;
    try {
      const { reasoning_effort: _effort, max_reasoning_tokens: _budget, ...request } = parsed.data;
      const budget = reasoningBudget(parsed.data);
      const input = budget !== undefined ? { ...request, reasoning_budget: budget } : request;
      const record = await jobs.submit(tenant, input, { source: "native" });
      bindLog(res, { job_id: record.id });
      res.location(`/v1/jobs/${record.id}`);
      if (waitSeconds === 0) {
        res.status(202).json(record);
        return;
      }
      // Submit and wait: one request instead of a submit and a long poll. The job was
      // accepted: a client that leaves, or a wait that ends first, does not cancel it.
      // Its id goes out at once (103 Early Hints), so a client whose scheduler dies during the
      // wait can still fetch the result with GET /v1/jobs/:id.
      if (!res.req.socket.destroyed) res.writeEarlyHints(jobEarlyHints([record.id]));
      const latest = await longPoll(jobs, res, tenant, record.id, waitSeconds);
      if (latest) res.status(isFinalStatus(latest.status) ? 200 : 202).json(await shown(latest));
    } finally {
      release?.();
    }
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
      res.json(await shown(await jobs.get(tenant, id)));
      return;
    }
    const release = streams?.acquire(tenant);
    try {
      const record = await longPoll(jobs, res, tenant, id, waitSeconds);
      if (record) res.json(await shown(record));
    } finally {
      release?.();
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

/**
 * The job's record once it is final or `waitSeconds` have passed, whichever is first;
 * null when the client went away meanwhile (there is no one to answer).
 */
async function longPoll(
  jobs: JobService,
  res: Response,
  tenant: string,
  id: string,
  waitSeconds: number,
): Promise<JobRecord | null> {
  const gone = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) gone.abort();
  };
  res.on("close", onClose);
  try {
    const record = await jobs.waitForFinal(tenant, id, waitSeconds * 1000, gone.signal);
    return gone.signal.aborted ? null : record;
  } finally {
    res.off("close", onClose);
  }
}

function param(req: Request, name: string): string {
  const value = req.params[name];
  if (typeof value !== "string") throw new InvalidRequestError(`Missing \`${name}\`.`, name);
  return value;
}
