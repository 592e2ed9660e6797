import { readFileSync } from "node:fs";
import { Redis, type RedisOptions } from "ioredis";

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

/**
 * ioredis options for `url`: for `rediss://`, TLS with the given files (read now, so a
 * missing file fails at start, naming it). A password in the URL is ioredis's AUTH. Every
 * Corral process connects through this, so a connection's `duplicate()`s (BullMQ's,
 * the stream hub's) carry the same TLS settings.
 */
export function redisConnectionOptions(url: string, tls: RedisTlsFiles = NO_REDIS_TLS_FILES): RedisOptions {
  if (!url.startsWith("rediss://")) return {};
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
  return {
    tls: {
      ...(ca ? { ca } : {}),
      ...(cert ? { cert } : {}),
      ...(key ? { key } : {}),
    },
  };
}

/** A Redis client for `url` with the TLS files applied, and `options` on top. */
export function connectRedis(url: string, tls: RedisTlsFiles, options: RedisOptions = {}): Redis {
  return new Redis(url, { ...redisConnectionOptions(url, tls), ...options });
}
