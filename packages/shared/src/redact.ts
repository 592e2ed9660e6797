/**
 * Hiding secrets in what Corral prints: config errors, CLI output, logs. Keys and tokens
 * are never shown; URLs keep their host and lose their password.
 */

const MASK = "***";

/** Query parameters whose values are secrets (a Sentinel URL's `sentinelPassword`). */
const SECRET_PARAMETER = /^(?:[A-Za-z]*password|[A-Za-z]*token|[A-Za-z]*secret|key)$/i;

/**
 * `redis://user:secret@host:6379/0` → `redis://user:***@host:6379/0`; `redis://secret@host` → `redis://***@host`;
 * `redis+sentinel://:secret@h1:26379,h2:26379/mymaster?sentinelPassword=other` → `redis+sentinel://:***@h1:26379,h2:26379/mymaster?sentinelPassword=***`.
 */
export function redactUrl(url: string): string {
  const withoutUserinfo = url.replace(
    /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#]*)@/,
    (_match, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(":");
      return `${scheme}${colon < 0 ? MASK : `${userinfo.slice(0, colon)}:${MASK}`}@`;
    },
  );
  return withoutUserinfo.replace(/([?&])([^=&#]+)=([^&#]*)/g, (match, sep: string, name: string) =>
    SECRET_PARAMETER.test(name) ? `${sep}${name}=${MASK}` : match,
  );
}

/** Variables whose values are secrets: keys, tokens, passwords. */
export function isSecretVariable(name: string): boolean {
  return /(KEY|KEYS|TOKEN|PASSWORD|SECRET)$/.test(name);
}

/**
 * The value of variable `name` as it may be printed: `tenant:key` lists keep their tenant
 * names, other secrets are masked whole, URLs lose their password, anything else is as is.
 */
export function redactVariable(name: string, value: string): string {
  if (name.endsWith("_KEYS")) {
    return value
      .split(",")
      .map((pair) => {
        const at = pair.indexOf(":");
        return at < 0 ? MASK : `${pair.slice(0, at)}:${MASK}`;
      })
      .join(",");
  }
  if (isSecretVariable(name)) return MASK;
  if (name.endsWith("_URL")) return redactUrl(value);
  return value;
}
