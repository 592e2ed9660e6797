import { randomUUID } from "node:crypto";
import type { Request, RequestHandler, Response } from "express";
import type { Logger } from "pino";
import type { Histogram } from "prom-client";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The express route pattern a request matched (`/v1/jobs/:id`), never the raw URL. */
export function routePattern(req: Request): string | null {
  const route = req.route as { path?: unknown } | undefined;
  if (!route || typeof route.path !== "string") return null;
  // A router's own root is its mount path: `/v1/jobs`, not `/v1/jobs/`.
  return route.path === "/" && req.baseUrl !== "" ? req.baseUrl : `${req.baseUrl}${route.path}`;
}

export interface RequestContextOptions {
  logger: Logger;
  /** Observes each request's duration under its route pattern (never the raw URL). */
  duration?: Histogram<"method" | "route" | "status">;
  /** Paths logged at debug rather than info (health checks, scrapes). */
  quietPaths?: ReadonlySet<string>;
}

/** What {@link bindLog} adds to, reachable from `res.locals` without being enumerable. */
const BINDINGS = Symbol("corral.logBindings");

/**
 * A request's `res.locals`: its id, and the logger behind `log`, made only when something
 * logs (most requests log only their completion line). A class, so that every request's
 * locals share one shape and the getter costs no per-request property definition.
 */
class RequestLocals {
  requestId: string;
  readonly [BINDINGS]: { base: Logger; fields: Record<string, unknown>; child: Logger | null };

  constructor(base: Logger, requestId: string) {
    this.requestId = requestId;
    this[BINDINGS] = { base, fields: { req_id: requestId }, child: null };
  }

  get log(): Logger {
    const bindings = this[BINDINGS];
    return (bindings.child ??= bindings.base.child(bindings.fields));
  }
}

/**
 * Adds `fields` to every later log line of this request, including its "request completed"
 * line. Cheap: the child logger behind `res.locals.log` is made only when something logs.
 */
export function bindLog(res: Response, fields: Record<string, unknown>): void {
  const locals: unknown = res.locals;
  if (!(locals instanceof RequestLocals)) return;
  const bindings = locals[BINDINGS];
  Object.assign(bindings.fields, fields);
  bindings.child = null;
}

/**
 * Gives each request an id (from `x-request-id` when it is sane, else a UUID), echoes it
 * in the response, gives it a logger bound to that id (`res.locals.log`, more fields with
 * {@link bindLog}), and when the response finishes logs one line and observes its duration
 * (one listener for both). Bodies are never logged.
 */
export function requestContext({ logger, duration, quietPaths = new Set() }: RequestContextOptions): RequestHandler {
  return (req, res, next) => {
    const header = req.headers["x-request-id"];
    const requestId = typeof header === "string" && REQUEST_ID.test(header) ? header : randomUUID();
    const locals = new RequestLocals(logger, requestId);
    // Express starts every request with empty locals; nothing has been put there yet.
    res.locals = locals as unknown as typeof res.locals;
    res.setHeader("x-request-id", requestId);
    const started = performance.now();
    res.on("finish", () => {
      const durationMs = performance.now() - started;
      const route = routePattern(req);
      duration?.observe(
        { method: req.method, route: route ?? "unmatched", status: String(res.statusCode) },
        durationMs / 1000,
      );
      // The request is over: its bindings take the completion fields directly.
      const fields = locals[BINDINGS].fields;
      fields.method = req.method;
      fields.route = route;
      fields.status = res.statusCode;
      fields.duration_ms = Math.round(durationMs * 10) / 10;
      if (quietPaths.has(req.path)) logger.debug(fields, "request completed");
      else logger.info(fields, "request completed");
    });
    next();
  };
}
