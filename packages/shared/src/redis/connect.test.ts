import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Cluster, Redis } from "ioredis";
import { CLUSTER_DEFAULTS, connectRedis, duplicateRedis, NO_REDIS_TLS_FILES, parseRedisUrl } from "./connect.js";

describe("CORRAL_REDIS_URL topologies", () => {
  test("a single node is passed to ioredis as is", () => {
    assert.deepEqual(parseRedisUrl("redis://:pw@h:6379/1"), {
      kind: "single",
      url: "redis://:pw@h:6379/1",
      tls: false,
    });
    assert.equal(parseRedisUrl("rediss://h:6380").tls, true);
  });

  test("a Sentinel URL names the sentinels, the master, both passwords and the database", () => {
    assert.deepEqual(
      parseRedisUrl(
        "rediss+sentinel://app:p%40w@10.0.0.1:26379,[::1],sentinel-c:26380/my-master?sentinelPassword=s&db=3",
      ),
      {
        kind: "sentinel",
        tls: true,
        sentinels: [
          { host: "10.0.0.1", port: 26379 },
          { host: "::1", port: 26379 },
          { host: "sentinel-c", port: 26380 },
        ],
        masterName: "my-master",
        db: 3,
        username: "app",
        password: "p@w",
        sentinelPassword: "s",
      },
    );
    assert.throws(() => parseRedisUrl("redis+sentinel://h1:26379,h2:26379"), /master name/);
  });

  test("a Cluster URL lists seed nodes, and takes no database", () => {
    assert.deepEqual(parseRedisUrl("redis+cluster://:pw@h1:7000,h2"), {
      kind: "cluster",
      tls: false,
      nodes: [
        { host: "h1", port: 7000 },
        { host: "h2", port: 6379 },
      ],
      password: "pw",
    });
    assert.throws(() => parseRedisUrl("redis+cluster://h1:7000/0"), /no database/);
    assert.throws(() => parseRedisUrl("redis+cluster://"), /host/);
    assert.throws(() => parseRedisUrl("http://h"), /Redis URL/);
  });

  test("connectRedis builds a Sentinel client or a Cluster with the failover settings, without connecting", () => {
    const sentinel = connectRedis("redis+sentinel://:pw@127.0.0.1:1/m?sentinelPassword=s", NO_REDIS_TLS_FILES, {
      lazyConnect: true,
    });
    assert.ok(sentinel instanceof Redis);
    assert.equal(sentinel.options.name, "m");
    assert.equal(sentinel.options.password, "pw");
    assert.equal(sentinel.options.sentinelPassword, "s");
    sentinel.disconnect();

    const redis = connectRedis("redis+cluster://127.0.0.1:1", NO_REDIS_TLS_FILES, {
      lazyConnect: true,
      connectionName: "x",
      maxRetriesPerRequest: null,
    });
    assert.ok((redis as unknown) instanceof Cluster);
    assert.equal(redis.isCluster, true);
    const cluster = redis as unknown as Cluster;
    assert.equal(cluster.options.retryDelayOnFailover, CLUSTER_DEFAULTS.retryDelayOnFailover);
    assert.equal(cluster.options.retryDelayOnClusterDown, CLUSTER_DEFAULTS.retryDelayOnClusterDown);
    assert.equal(cluster.options.maxRedirections, 32);
    assert.equal(cluster.options.lazyConnect, true);
    assert.equal(cluster.options.redisOptions?.connectionName, "x");
    const copy = duplicateRedis(redis, { connectionName: "y" }) as unknown as Cluster;
    assert.ok(copy instanceof Cluster);
    assert.equal(copy.options.redisOptions?.connectionName, "y");
    assert.equal(copy.options.redisOptions?.maxRetriesPerRequest, null);
    copy.disconnect();
    cluster.disconnect();
  });
});
