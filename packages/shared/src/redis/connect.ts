import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";

/**
 * TLS files for a `rediss://` Redis (`CORRAL_REDIS_TLS_CA`, `_CERT`, `_KEY`). With none set,
 * a `rediss://` URL verifies the server against the system's CAs.
 */
export interface RedisTlsFiles {
  /** PEM file of the CA that signed the server's certificate (a private CA). */
  ca: string | null;
  /** PEM client certificate and key, for a Redis with `tls-auth-clients yes`. */
  cert: string | null;
  key: string | null;
}

export const NO_REDIS_TLS_FILES: RedisTlsFiles = { ca: null, cert: null, key: null };

/** One host and port of a Sentinel or Cluster URL. */
export interface RedisNode {
  host: string;
  port: number;
}

/**
 * What a `CORRAL_REDIS_URL` names:
 * - `redis://[user:password@]host:port[/db]` (or `rediss://`): one Redis;
 * - `redis+sentinel://[user:password@]host:26379,host:26379/master-name[?sentinelPassword=…&sentinelUsername=…&db=N]`
 *   (or `rediss+sentinel://`, TLS to the sentinels and to Redis): the master that the sentinels name;
 * - `redis+cluster://[user:password@]host:7000,host:7001` (or `rediss+cluster://`): a Redis Cluster from its seed nodes.
 *
 * The user and password are Redis's (AUTH on the master, replicas, cluster nodes); the
 * sentinels' own, when they have one, is the `sentinelPassword` parameter.
 */
export type RedisTopology =
  | { kind: "single"; url: string; tls: boolean }
  | {
      kind: "sentinel";
      tls: boolean;
      sentinels: RedisNode[];
      masterName: string;
      username?: string;
      password?: string;
      sentinelUsername?: string;
      sentinelPassword?: string;
      db: number;
    }
  | { kind: "cluster"; tls: boolean; nodes: RedisNode[]; username?: string; password?: string };

/** The URL schemes `CORRAL_REDIS_URL` accepts. */
export const REDIS_URL_PATTERN = /^rediss?(\+sentinel|\+cluster)?:\/\/.+/;

/** Cluster settings measured to keep a master failover from losing the finish of active jobs. */
export const CLUSTER_DEFAULTS = {
  retryDelayOnFailover: 500,
  retryDelayOnClusterDown: 500,
  maxRedirections: 32,
} as const satisfies ClusterOptions;

/** Parses `CORRAL_REDIS_URL` (see {@link RedisTopology}); throws a message fit for a config error. */
export function parseRedisUrl(url: string): RedisTopology {
  const match = /^(rediss?)(\+sentinel|\+cluster)?:\/\/(.*)$/.exec(url);
  if (!match) throw new Error("expected a Redis URL such as redis://127.0.0.1:6379");
  const tls = match[1] === "rediss";
  const kind = match[2];
  if (!kind) return { kind: "single", url, tls };
  const rest = match[3]!;
  const at = rest.lastIndexOf("@", rest.search(/[/?]/) < 0 ? rest.length : rest.search(/[/?]/));
  const userinfo = at < 0 ? "" : rest.slice(0, at);
  const afterAuth = at < 0 ? rest : rest.slice(at + 1);
  const hostsEnd = afterAuth.search(/[/?]/);
  const hostList = hostsEnd < 0 ? afterAuth : afterAuth.slice(0, hostsEnd);
  const tail = hostsEnd < 0 ? "" : afterAuth.slice(hostsEnd);
  const query = new URLSearchParams(tail.includes("?") ? tail.slice(tail.indexOf("?") + 1) : "");
  const path = decodeURIComponent((tail.includes("?") ? tail.slice(0, tail.indexOf("?")) : tail).replace(/^\//, ""));
  const defaultPort = kind === "+sentinel" ? 26379 : 6379;
  const nodes = hostList
    .split(",")
    .map((h) => h.trim())
    .filter(Boolean)
    .map((hostPort): RedisNode => {
      const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostPort);
      if (!m) throw new Error(`cannot read the host ${JSON.stringify(hostPort)}`);
      return { host: m[1]!.replace(/^\[|\]$/g, ""), port: m[2] ? Number(m[2]) : defaultPort };
    });
  if (nodes.length === 0) throw new Error("expected at least one host:port");
  const colon = userinfo.indexOf(":");
  const username = decodeURIComponent(colon < 0 ? "" : userinfo.slice(0, colon)) || undefined;
  const password = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(colon + 1)) || undefined;
  const auth = { ...(username ? { username } : {}), ...(password ? { password } : {}) };
  if (kind === "+cluster") {
    if (path !== "") throw new Error("a Cluster URL has no database or master name (redis+cluster://host:port,…)");
    return { kind: "cluster", tls, nodes, ...auth };
  }
  if (path === "") throw new Error("a Sentinel URL needs the master name: redis+sentinel://host:26379,…/mymaster");
  const db = Number(query.get("db") ?? "0");
  if (!Number.isInteger(db) || db < 0) throw new Error("db must be a non-negative integer");
  const sentinelUsername = query.get("sentinelUsername") ?? undefined;
  const sentinelPassword = query.get("sentinelPassword") ?? undefined;
  return {
    kind: "sentinel",
    tls,
    sentinels: nodes,
    masterName: path,
    db,
    ...auth,
    ...(sentinelUsername ? { sentinelUsername } : {}),
    ...(sentinelPassword ? { sentinelPassword } : {}),
  };
}

function tlsOptions(tls: RedisTlsFiles): ConnectionOptions {
  const read = (what: string, path: string | null) => {
    if (path === null) return undefined;
    try {
      return readFileSync(path);
    } catch (error) {
      throw new Error(`cannot read the Redis TLS ${what} file ${path}: ${(error as Error).message}`, { cause: error });
    }
  };
  const ca = read("CA", tls.ca);
  const cert = read("certificate", tls.cert);
  const key = read("key", tls.key);
  return { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
}

/**
 * ioredis options for `url` (a single node, Sentinel, or each node of a Cluster): TLS
 * with the given files for `rediss…` (read now, so a missing file fails at start, naming
 * it), the sentinels and credentials of a Sentinel URL, the credentials of a Cluster URL.
 * A password in a single-node URL is ioredis's AUTH. Every Corral process connects
 * through this, so a connection's `duplicate()`s (BullMQ's, the stream hub's) carry the
 * same settings.
 */
export function redisConnectionOptions(url: string, tls: RedisTlsFiles = NO_REDIS_TLS_FILES): RedisOptions {
  const topology = parseRedisUrl(url);
  const secure = topology.tls ? { tls: tlsOptions(tls) } : {};
  switch (topology.kind) {
    case "single":
      return secure;
    case "cluster":
      return {
        ...secure,
        ...(topology.username ? { username: topology.username } : {}),
        ...(topology.password ? { password: topology.password } : {}),
      };
    case "sentinel":
      return {
        ...secure,
        sentinels: topology.sentinels,
        name: topology.masterName,
        db: topology.db,
        ...(topology.username ? { username: topology.username } : {}),
        ...(topology.password ? { password: topology.password } : {}),
        ...(topology.sentinelUsername ? { sentinelUsername: topology.sentinelUsername } : {}),
        ...(topology.sentinelPassword ? { sentinelPassword: topology.sentinelPassword } : {}),
        ...(topology.tls ? { enableTLSForSentinelMode: true, sentinelTLS: secure.tls } : {}),
        // Drop the connection to a master that sentinels demoted, rather than wait for it to fail.
        failoverDetector: true,
      };
  }
}

/** Options that belong to the Cluster client itself rather than to each node's connection. */
const CLUSTER_LEVEL = ["lazyConnect", "enableOfflineQueue", "enableReadyCheck", "scripts"] as const;

/**
 * A Redis client for `url` with the TLS files applied, and `options` on top.
 *
 * For a `redis+cluster://` URL this is an ioredis `Cluster`, typed as `Redis`. The cast is
 * deliberate and lives only here: Corral passes connections around as `Redis` in many
 * places, and everything it calls on them — commands, `defineCommand` scripts, pipelines
 * and MULTI (one hash tag, so one slot), pub/sub, blocking reads, `status`, `quit`,
 * `disconnect`, BullMQ's `connection` — a `Cluster` has with the same signatures. The one
 * exception is `duplicate(options)`, whose Cluster form takes seed nodes first: use
 * {@link duplicateRedis}. {@link isCluster} tells the two apart where it matters (a
 * command without keys, such as WAIT, that must reach the slot's master).
 */
export function connectRedis(url: string, tls: RedisTlsFiles, options: RedisOptions = {}): Redis {
  const topology = parseRedisUrl(url);
  const connection = redisConnectionOptions(url, tls);
  if (topology.kind === "single") return new Redis(url, { ...connection, ...options });
  if (topology.kind === "sentinel") return new Redis({ ...connection, ...options });
  const redisOptions: RedisOptions = { ...connection, ...options };
  const clusterLevel: Partial<ClusterOptions> = {};
  for (const name of CLUSTER_LEVEL) {
    if (name in redisOptions) {
      Object.assign(clusterLevel, { [name]: redisOptions[name as keyof RedisOptions] });
      delete redisOptions[name as keyof RedisOptions];
    }
  }
  const cluster = new Cluster(topology.nodes, {
    ...CLUSTER_DEFAULTS,
    ...clusterLevel,
    redisOptions,
  });
  return cluster as unknown as Redis;
}

/** Whether a connection from {@link connectRedis} is a Cluster. */
export function isCluster(redis: Redis | Cluster): boolean {
  return redis.isCluster;
}

/**
 * `redis.duplicate(options)` for a connection from {@link connectRedis}: a Cluster's
 * duplicate keeps its seed nodes and applies `options` to each node's connection.
 */
export function duplicateRedis(redis: Redis, options: RedisOptions = {}): Redis {
  if (!redis.isCluster) return redis.duplicate(options);
  const cluster = redis as unknown as Cluster;
  return cluster.duplicate(undefined, {
    redisOptions: { ...cluster.options.redisOptions, ...options },
  }) as unknown as Redis;
}
