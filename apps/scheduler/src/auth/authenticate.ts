import type { RequestHandler } from "express";
import { AuthenticationError, PermissionDeniedError } from "@corral/shared";
import type { ApiKeyAuthenticator } from "./api-key-authenticator.js";
import type { Principal } from "./principal.js";
import { bindLog } from "../http/request-context.js";

/** Requires a valid `Authorization: Bearer <key>` (unless the API is open) and sets `res.locals.principal`. */
export function authenticate(authenticator: ApiKeyAuthenticator): RequestHandler {
  return (req, res, next) => {
    const principal = authenticator.authenticate(req.headers.authorization);
    if (!principal) {
      next(new AuthenticationError());
      return;
    }
    res.locals.principal = principal;
    bindLog(res, { tenant: principal.tenant });
    next();
  };
}

/** For admin routes, after {@link authenticate}: only the admin key passes (403 otherwise). */
export const requireAdmin: RequestHandler = (_req, res, next) => {
  if (!res.locals.principal) {
    next(new AuthenticationError());
    return;
  }
  if (!res.locals.principal.isAdmin) {
    next(new PermissionDeniedError());
    return;
  }
  next();
};

/** The authenticated principal; throws if the auth middleware did not run (a wiring bug). */
export function principalOf(locals: { principal?: Principal }): Principal {
  if (!locals.principal) throw new AuthenticationError();
  return locals.principal;
}
