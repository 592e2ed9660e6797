import { createHash, timingSafeEqual } from "node:crypto";
import { ADMIN_TENANT, OPEN_TENANT, type Principal } from "./principal.js";

export interface ApiKeyAuthenticatorOptions {
  /**
   * Tenant keys. When empty, the API is open: every caller is tenant `default`.
   * @defaultValue []
   */
  apiKeys?: ReadonlyArray<{ tenant: string; key: string }>;
  /**
   * Key of the admin principal (tenant `admin`).
   * @defaultValue null
   */
  adminKey?: string | null;
}

interface KeyEntry {
  hash: Buffer;
  principal: Principal;
}

const sha256 = (value: string): Buffer => createHash("sha256").update(value, "utf8").digest();

/**
 * Maps `Authorization: Bearer <key>` to a principal. Keys are kept only as SHA-256
 * hashes and compared with `timingSafeEqual` over the hashes, against every entry.
 */
export class ApiKeyAuthenticator {
  readonly #entries: readonly KeyEntry[];
  /** True when no tenant keys are configured: callers without a valid key are tenant `default`. */
  readonly open: boolean;

  constructor(options: ApiKeyAuthenticatorOptions = {}) {
    const apiKeys = options.apiKeys ?? [];
    const entries: KeyEntry[] = apiKeys.map(({ tenant, key }) => ({
      hash: sha256(key),
      principal: Object.freeze({ tenant, isAdmin: false }),
    }));
    if (options.adminKey) {
      entries.push({
        hash: sha256(options.adminKey),
        principal: Object.freeze({ tenant: ADMIN_TENANT, isAdmin: true }),
      });
    }
    this.#entries = entries;
    this.open = apiKeys.length === 0;
  }

  /** The principal for an `Authorization` header value, or null when the key is missing or unknown. */
  authenticate(authorization: string | undefined): Principal | null {
    const key = bearerToken(authorization);
    const found = key === null ? null : this.#lookup(key);
    if (found) return found;
    return this.open ? { tenant: OPEN_TENANT, isAdmin: false } : null;
  }

  #lookup(key: string): Principal | null {
    const hash = sha256(key);
    let found: Principal | null = null;
    // No early exit: every entry is compared, so timing says nothing about which matched.
    for (const entry of this.#entries) {
      if (timingSafeEqual(hash, entry.hash) && found === null) found = entry.principal;
    }
    return found;
  }
}

/** The token of `Bearer <token>`, or null. */
export function bearerToken(authorization: string | undefined): string | null {
  if (!authorization) return null;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
  return match?.[1] ?? null;
}
