import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ApiKeyAuthenticator, bearerToken } from "./api-key-authenticator.js";

describe("ApiKeyAuthenticator", () => {
  const auth = new ApiKeyAuthenticator({
    apiKeys: [
      { tenant: "lab-a", key: "sk-aaaaaaaaaaaaaaaa" },
      { tenant: "lab-b", key: "sk-bbbbbbbbbbbbbbbb" },
    ],
    adminKey: "sk-admin-cccccccccccc",
  });

  test("maps each key to its tenant and the admin key to the admin principal", () => {
    assert.deepEqual(auth.authenticate("Bearer sk-aaaaaaaaaaaaaaaa"), { tenant: "lab-a", isAdmin: false });
    assert.deepEqual(auth.authenticate("Bearer sk-bbbbbbbbbbbbbbbb"), { tenant: "lab-b", isAdmin: false });
    assert.deepEqual(auth.authenticate("Bearer sk-admin-cccccccccccc"), { tenant: "admin", isAdmin: true });
    assert.equal(auth.open, false);
  });

  test("rejects missing, unknown and malformed credentials", () => {
    for (const header of [
      undefined,
      "",
      "Bearer",
      "Bearer sk-aaaaaaaaaaaaaaa",
      "Basic sk-aaaaaaaaaaaaaaaa",
      "sk-aaaaaaaaaaaaaaaa",
      "Bearer a b",
    ]) {
      assert.equal(auth.authenticate(header), null, String(header));
    }
  });

  test("keeps no key in clear text", () => {
    const text = JSON.stringify(Object.entries(auth)) + String(Object.keys(auth));
    assert.ok(!text.includes("sk-aaaa"));
  });

  test("open mode: everyone is tenant default, the admin key still maps to admin", () => {
    const open = new ApiKeyAuthenticator({ adminKey: "sk-admin-cccccccccccc" });
    assert.equal(open.open, true);
    assert.deepEqual(open.authenticate(undefined), { tenant: "default", isAdmin: false });
    assert.deepEqual(open.authenticate("Bearer anything-at-all"), { tenant: "default", isAdmin: false });
    assert.deepEqual(open.authenticate("Bearer sk-admin-cccccccccccc"), { tenant: "admin", isAdmin: true });
  });

  test("bearerToken", () => {
    assert.equal(bearerToken("Bearer abc"), "abc");
    assert.equal(bearerToken("bearer  abc "), "abc");
    assert.equal(bearerToken("Token abc"), null);
  });
});
