import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startApi, type ApiHarness } from "../api/harness.js";
import { builtConsole } from "./support.js";

describe("the scheduler serves the console at /console with a CSP and caching headers", () => {
  let api: ApiHarness;

  before(async () => {
    builtConsole();
    api = await startApi({ env: { CORRAL_API_KEYS: "lab:sk-lab-0123456789abcdef" } });
  });
  after(async () => {
    await api?.close();
  });

  test("/ and /console redirect to /console/", async () => {
    const root = await fetch(`${api.url}/`, { redirect: "manual" });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get("location"), "/console/");
    const bare = await fetch(`${api.url}/console`, { redirect: "manual" });
    assert.equal(bare.status, 301);
    assert.equal(bare.headers.get("location"), "/console/");
  });

  test("the page needs no key, is revalidated on every load, and carries a strict CSP with no inline script", async () => {
    const page = await fetch(`${api.url}/console/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /text\/html/);
    assert.equal(page.headers.get("cache-control"), "no-cache");
    const csp = page.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.ok(!csp.includes("unsafe-inline") && !csp.includes("unsafe-eval"), csp);
    assert.equal(page.headers.get("x-content-type-options"), "nosniff");
    assert.equal(page.headers.get("referrer-policy"), "no-referrer");
    const html = await page.text();
    // Every script is a file of the console's own; none is inline, and nothing comes from another origin.
    for (const script of html.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)) {
      assert.match(script[0], /src="\/console\/assets\/[^"]+\.js"/);
      assert.equal(script[1]!.trim(), "");
    }
    assert.ok(!/(src|href)="(https?:)?\/\//.test(html), "the page loads something from another origin");
  });

  test("hashed assets are immutable for a year; a missing one is a 404", async () => {
    const html = await (await fetch(`${api.url}/console/`)).text();
    const asset = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const response = await fetch(`${api.url}${asset}`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /javascript/);
    assert.match(response.headers.get("cache-control") ?? "", /max-age=31536000/);
    assert.match(response.headers.get("cache-control") ?? "", /immutable/);
    assert.ok(response.headers.get("content-security-policy"));
    const missing = await fetch(`${api.url}/console/assets/nope-123.js`);
    assert.equal(missing.status, 404);
  });
});
