import { randomUUID } from "node:crypto";
import type { Request, RequestHandler, Response } from "express";
import type { Logger } from "pino";
import type { Histogram } from "prom-client";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The express route pattern a request matched (`/v1/jobs/:id`), never the raw URL. */
export function routePattern(req: Request): string | null {
  const route = req.route as { path?: unknown } | undefined;
  if (!route || typeof route.path !== "string") return null;
  return `${req.baseUrl}${route.path}`;
}

export interface RequestContextOptions {
  logger: Logger;
  /** Observes each request's duration under its route pattern (never the raw URL). */
  duration?: Histogram<"method" | "route" | "status">;
  /** Paths logged at debug rather than info (health checks, scrapes). */
  quietPaths?: ReadonlySet<string>;
}

/** The fields bound to a request's log lines: its id, then tenant, job or batch ids as the handlers learn them. */
const BINDINGS = Symbol("corral.logBindings");

interface LogBindings {
  readonly base: Logger;
  readonly fields: Record<string, unknown>;
  child: Logger | null;
}

/**
 * Adds `fields` to every later log line of this request, including its "request completed"
 * line. Cheap: the child logger behind `res.locals.log` is made only when something logs.
 */
export function bindLog(res: Response, fields: Record<string, unknown>): void {
  const bindings = (res.locals as { [BINDINGS]?: LogBindings })[BINDINGS];
  if (!bindings) return;
  Object.assign(bindings.fields, fields);
  bindings.child = null;
}

/**
 * Gives each request an id (from `x-request-id` when it is sane, else a UUID), echoes it
 * in the response, gives it a logger bound to that id (`res.locals.log`, more fields with
 * {@link bindLog}), and when the response finishes logs one line and observes its duration
 * (one listener for both). Bodies are never logged.
 * The child logger is made lazily: most requests log only their completion line.
 */
export function requestContext({ logger, duration, quietPaths = new Set() }: RequestContextOptions): RequestHandler {
  return (req, res, next) => {
    const header = req.headers["x-request-id"];
    const requestId = typeof header === "string" && REQUEST_ID.test(header) ? header : randomUUID();
    res.locals.requestId = requestId;
    const bindings: LogBindings = { base: logger, fields: { req_id: requestId }, child: null };
    Object.defineProperty(res.locals, BINDINGS, { value: bindings });
    Object.defineProperty(res.locals, "log", {
      configurable: true,
      enumerable: true,
      get: () => (bindings.child ??= bindings.base.child(bindings.fields)),
    });
    res.setHeader("x-request-id", requestId);
    const started = process.hrtime.bigint();
    res.on("finish", () => {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      const route = routePattern(req);
      duration?.observe(
        { method: req.method, route: route ?? "unmatched", status: String(res.statusCode) },
        durationMs / 1000,
      );
      const fields = {
        ...bindings.fields,
        method: req.method,
        route,
        status: res.statusCode,
        duration_ms: Math.round(durationMs * 10) / 10,
      };
      if (quietPaths.has(req.path)) logger.debug(fields, "request completed");
      else logger.info(fields, "request completed");
    });
    next();
  };
}
