import type { ErrorRequestHandler, RequestHandler } from "express";
import type { Logger } from "pino";
import {
  CorralError,
  InvalidRequestError,
  REDIS_RETRY_AFTER_SECONDS,
  RedisUnavailableError,
  isRedisUnavailable,
} from "@corral/shared";
import { RouteNotFoundError, errorBody, internalErrorBody } from "./errors.js";

/** Unknown routes: a 404 in the usual error shape. */
export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new RouteNotFoundError(req.method, req.path));
};

/**
 * Maps every error to one JSON shape, `{error:{message,type,param,code}}`. CorralErrors
 * carry their status, type, param and code; a Redis that is down or did not answer in time
 * is a 503 `redis_unavailable` with `Retry-After`; anything else is a 500 with a generic
 * message, and the error (with its stack) goes only to the log.
 */
export function errorHandler(fallbackLogger: Logger): ErrorRequestHandler {
  return (thrown: unknown, _req, res, next) => {
    const error = asRedisUnavailable(thrown);
    const log = res.locals.log ?? fallbackLogger;
    if (res.headersSent) {
      log.warn({ err: error }, "error after the response started");
      next(error);
      return;
    }
    if (error instanceof CorralError) {
      if (error.status >= 500) log.warn({ err: error }, "request failed");
      else log.debug({ code: error.code, param: error.param, status: error.status }, error.message);
      if (error.retryAfterSeconds !== null) res.set("Retry-After", String(error.retryAfterSeconds));
      res.status(error.status).json(errorBody(error));
      return;
    }
    if (error instanceof URIError) {
      // express could not decode a percent-escape in a route parameter (`/v1/jobs/%ZZ`).
      const invalid = new InvalidRequestError("The request path has a malformed percent-escape.", null, "invalid_path");
      res.status(invalid.status).json(errorBody(invalid));
      return;
    }
    log.error({ err: error }, "unexpected error");
    res.status(500).json(internalErrorBody(res.locals.requestId ?? "unknown"));
  };
}

/** A Redis connection failure as the 503 {@link RedisUnavailableError}; any other error as it is. */
export function asRedisUnavailable(error: unknown): unknown {
  if (error instanceof CorralError || !isRedisUnavailable(error)) return error;
  return new RedisUnavailableError(REDIS_RETRY_AFTER_SECONDS, error);
}
