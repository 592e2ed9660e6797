import type { RequestHandler } from "express";
import type { Histogram } from "prom-client";
import { routePattern } from "../http/request-context.js";

/** Observes each request's duration under its route pattern (never the raw URL). */
export function httpMetrics(histogram: Histogram<"method" | "route" | "status">): RequestHandler {
  return (req, res, next) => {
    const end = histogram.startTimer();
    res.on("finish", () => {
      end({ method: req.method, route: routePattern(req) ?? "unmatched", status: String(res.statusCode) });
    });
    next();
  };
}
