import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { pino } from "pino";
import { RedisKeys, laneName, type Catalog } from "@corral/shared";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { CatalogCache } from "./catalog-cache.js";
import { catalogModel } from "../../../../test/support/models.js";

describe("CatalogCache on real Redis", () => {
  let url: string;
  let redis: Redis;
  const prefix = uniquePrefix("catalog-cache");
  const keys = new RedisKeys(prefix);
  const publish = async (ids: string[], version: string | null) => {
    const catalog: Catalog = { models: ids.map((id) => catalogModel(id)), updated_at: 1 };
    await redis.set(keys.catalog, JSON.stringify(catalog));
    if (version === null) await redis.del(keys.catalogVersion);
    else await redis.set(keys.catalogVersion, version);
  };
  before(async () => {
    url = (await testRedis()).url;
    redis = new Redis(url);
  });
  after(async () => {
    redis?.disconnect();
    await cleanupPrefix(url, prefix);
  });

  test("reads the catalog only when its version changed, and every time when there is no version", async () => {
    const cache = new CatalogCache({ redis, keys, refreshMs: 0, logger: pino({ level: "silent" }) });
    await publish(["a"], "v1");
    await cache.refresh(1);
    assert.deepEqual(cache.lanes(), [laneName("a")]);
    // The same version: the catalog is not read again (a change without a new version is not seen).
    await publish(["a", "b"], "v1");
    await cache.refresh(2);
    assert.deepEqual(cache.lanes(), [laneName("a")]);
    await publish(["a", "b"], "v2");
    await cache.refresh(3);
    assert.deepEqual(cache.lanes().sort(), [laneName("a"), laneName("b")]);
    // An older scheduler writes no version: the catalog is read every refresh.
    await publish(["c"], null);
    await cache.refresh(4);
    assert.deepEqual(cache.lanes(), [laneName("c")]);
    await publish(["d"], null);
    await cache.refresh(5);
    assert.deepEqual(cache.lanes(), [laneName("d")]);
  });
});
