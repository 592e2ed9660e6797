import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { pino } from "pino";
import { RedisKeys } from "@corral/shared";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { ApiKeyAuthenticator } from "../auth/api-key-authenticator.js";
import { errorHandler } from "../http/error-handler.js";
import { adminAuth, ADMIN_BASIC_CHALLENGE } from "./admin-auth.js";
import { createBullBoardRouter } from "./bull-board.js";

const ADMIN_KEY = "admin-key-0123456789abcdef";
const TENANT_KEY = "acme-key-0123456789abcdef";

describe("bull-board router behind adminAuth", () => {
  let redisUrl: string;
  let prefix: string;
  let connection: Redis;
  const queues: Queue[] = [];
  let server: Server;
  let base: string;

  before(async () => {
    redisUrl = (await testRedis()).url;
    prefix = uniquePrefix("bullboard");
    connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
    const keys = new RedisKeys(prefix);
    const first = new Queue("lane-alpha", { connection, prefix: keys.prefix });
    await first.add("job", { prompt: "x" });
    queues.push(first);

    const app = express();
    const authenticator = new ApiKeyAuthenticator({
      apiKeys: [{ tenant: "acme", key: TENANT_KEY }],
      adminKey: ADMIN_KEY,
    });
    // The list is read on each request, as the scheduler's lanes would be.
    app.use(
      "/admin/queues",
      adminAuth(authenticator),
      createBullBoardRouter({ queues: async () => [...queues], basePath: "/admin/queues" }),
    );
    app.use(errorHandler(pino({ level: "silent" })));
    server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    for (const queue of queues) await queue.close();
    connection.disconnect();
    await cleanupPrefix(redisUrl, prefix);
  });

  const get = (path: string, authorization?: string) =>
    fetch(`${base}${path}`, { headers: authorization ? { authorization } : {} });

  test("the admin key gets the board's HTML, and its assets load from under the mount path", async () => {
    const res = await get("/admin/queues", `Bearer ${ADMIN_KEY}`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/html/);
    const html = await res.text();
    assert.match(html, /<base href="\/admin\/queues\/"/);
    const css = /href="(static\/css\/[^"]+\.css)"/.exec(html)?.[1];
    assert.ok(css, "the page links a stylesheet");
    const asset = await get(`/admin/queues/${css}`, `Bearer ${ADMIN_KEY}`);
    assert.equal(asset.status, 200);
  });

  test("a browser may send the admin key as the Basic auth password", async () => {
    const basic = Buffer.from(`admin:${ADMIN_KEY}`).toString("base64");
    const res = await get("/admin/queues/api/queues", `Basic ${basic}`);
    assert.equal(res.status, 200);
  });

  test("no key is 401 with a Basic challenge; a tenant key is 403; a wrong key is 401", async () => {
    const none = await get("/admin/queues");
    assert.equal(none.status, 401);
    assert.equal(none.headers.get("www-authenticate"), ADMIN_BASIC_CHALLENGE);
    assert.equal(((await none.json()) as { error: { code: string } }).error.code, "invalid_api_key");

    const tenant = await get("/admin/queues/api/queues", `Bearer ${TENANT_KEY}`);
    assert.equal(tenant.status, 403);

    const wrong = await get("/admin/queues/api/queues", "Bearer not-a-key-0123456789abcdef");
    assert.equal(wrong.status, 401);
    const wrongBasic = Buffer.from(`admin:${TENANT_KEY}x`).toString("base64");
    assert.equal((await get("/admin/queues", `Basic ${wrongBasic}`)).status, 401);
  });

  test("lanes created after start-up appear in the board", async () => {
    const names = async () => {
      const res = await get("/admin/queues/api/queues", `Bearer ${ADMIN_KEY}`);
      assert.equal(res.status, 200);
      const body = (await res.json()) as { queues: Array<{ name: string }> };
      return body.queues.map((q) => q.name).sort();
    };
    assert.deepEqual(await names(), ["lane-alpha"]);

    const second = new Queue("lane-beta", { connection, prefix: new RedisKeys(prefix).prefix });
    await second.add("job", { prompt: "y" });
    queues.push(second);
    assert.deepEqual(await names(), ["lane-alpha", "lane-beta"]);
  });
});
