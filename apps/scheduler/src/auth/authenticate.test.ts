import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { NextFunction, Request, Response } from "express";
import { pino } from "pino";
import { AuthenticationError, PermissionDeniedError } from "@corral/shared";
import { ApiKeyAuthenticator } from "./api-key-authenticator.js";
import { authenticate, requireAdmin } from "./authenticate.js";
import type { Principal } from "./principal.js";

const run = (
  handler: (req: Request, res: Response, next: NextFunction) => void,
  headers: Record<string, string>,
  principal?: Principal,
) => {
  const req = { headers } as unknown as Request;
  const res = { locals: { requestId: "r", log: pino({ level: "silent" }), principal } } as unknown as Response;
  let passed: unknown = "not called";
  handler(req, res, (error?: unknown) => (passed = error));
  return { error: passed, principal: res.locals.principal };
};

describe("auth middleware", () => {
  const authenticator = new ApiKeyAuthenticator({
    apiKeys: [{ tenant: "lab-a", key: "sk-aaaaaaaaaaaaaaaa" }],
    adminKey: "sk-admin-cccccccccccc",
  });

  test("authenticate sets the principal or passes a 401", () => {
    const ok = run(authenticate(authenticator), { authorization: "Bearer sk-aaaaaaaaaaaaaaaa" });
    assert.equal(ok.error, undefined);
    assert.deepEqual(ok.principal, { tenant: "lab-a", isAdmin: false });
    const bad = run(authenticate(authenticator), { authorization: "Bearer nope" });
    assert.ok(bad.error instanceof AuthenticationError);
  });

  test("requireAdmin lets only the admin principal through", () => {
    assert.equal(run(requireAdmin, {}, { tenant: "admin", isAdmin: true }).error, undefined);
    assert.ok(run(requireAdmin, {}, { tenant: "lab-a", isAdmin: false }).error instanceof PermissionDeniedError);
    assert.ok(run(requireAdmin, {}).error instanceof AuthenticationError);
  });
});
