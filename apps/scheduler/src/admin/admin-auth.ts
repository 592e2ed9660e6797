import type { RequestHandler } from "express";
import { AuthenticationError, PermissionDeniedError } from "@corral/shared";
import type { ApiKeyAuthenticator } from "../auth/api-key-authenticator.js";
import { bindLog } from "../http/request-context.js";

/** The challenge that makes a browser ask for credentials (user name ignored, password = admin key). */
export const ADMIN_BASIC_CHALLENGE = 'Basic realm="Corral admin", charset="UTF-8"';

/**
 * Admin-only access for pages a browser opens (bull-board). Accepts the admin key as
 * `Authorization: Bearer <key>` or as the password of HTTP Basic auth, since a browser
 * cannot add a bearer header to the board's own requests but does resend Basic
 * credentials. Sets `res.locals.principal` like `authenticate`.
 * - admin key: next();
 * - a tenant's key: 403;
 * - no key or an unknown one: 401 with a `WWW-Authenticate: Basic` challenge.
 */
export function adminAuth(authenticator: ApiKeyAuthenticator): RequestHandler {
  return (req, res, next) => {
    const key = presentedKey(req.headers.authorization);
    const principal = key === null ? null : authenticator.authenticate(`Bearer ${key}`);
    if (principal?.isAdmin) {
      res.locals.principal = principal;
      bindLog(res, { tenant: principal.tenant });
      next();
      return;
    }
    // In open mode (no tenant keys) every unknown key maps to tenant `default`; only a
    // real tenant key is a "known but not allowed" caller.
    if (principal !== null && !authenticator.open) {
      next(new PermissionDeniedError());
      return;
    }
    res.setHeader("WWW-Authenticate", ADMIN_BASIC_CHALLENGE);
    next(new AuthenticationError("The admin key is required: send `Authorization: Bearer <admin key>`."));
  };
}

/** The key in `Bearer <key>` or in the password of `Basic base64(user:key)`, else null. */
function presentedKey(authorization: string | undefined): string | null {
  if (!authorization) return null;
  const bearer = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
  if (bearer?.[1]) return bearer[1];
  const basic = /^Basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*$/i.exec(authorization);
  if (!basic?.[1]) return null;
  const decoded = Buffer.from(basic[1], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  const password = colon === -1 ? decoded : decoded.slice(colon + 1);
  return password.length > 0 ? password : null;
}
