import { randomUUID } from "node:crypto";
import type { Request, RequestHandler } from "express";
import type { Logger } from "pino";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The express route pattern a request matched (`/v1/jobs/:id`), never the raw URL. */
export function routePattern(req: Request): string | null {
  const route = req.route as { path?: unknown } | undefined;
  if (!route || typeof route.path !== "string") return null;
  return `${req.baseUrl}${route.path}`;
}

export interface RequestContextOptions {
  logger: Logger;
  /** Paths logged at debug rather than info (health checks, scrapes). */
  quietPaths?: ReadonlySet<string>;
}

/**
 * Gives each request an id (from `x-request-id` when it is sane, else a UUID), echoes it
 * in the response, binds a child logger to it, and logs one line when the response
 * finishes. Bodies are never logged.
 */
export function requestContext({ logger, quietPaths = new Set() }: RequestContextOptions): RequestHandler {
  return (req, res, next) => {
    const header = req.headers["x-request-id"];
    const requestId = typeof header === "string" && REQUEST_ID.test(header) ? header : randomUUID();
    res.locals.requestId = requestId;
    res.locals.log = logger.child({ req_id: requestId });
    res.setHeader("x-request-id", requestId);
    const started = process.hrtime.bigint();
    res.on("finish", () => {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      const fields = {
        method: req.method,
        route: routePattern(req),
        status: res.statusCode,
        duration_ms: Math.round(durationMs * 10) / 10,
      };
      if (quietPaths.has(req.path)) res.locals.log.debug(fields, "request completed");
      else res.locals.log.info(fields, "request completed");
    });
    next();
  };
}
