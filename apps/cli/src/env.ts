import { ConfigError, type Env } from "@corral/shared";
import type { EnvVariableSpec } from "./options/env-options.js";

/** The variables the client commands (`workers`, `models`, `submit`) read. */
export const CLIENT_ENV: readonly EnvVariableSpec[] = [
  { name: "CORRAL_URL", default: "http://127.0.0.1:8080", description: "Base URL of the scheduler's API." },
  {
    name: "CORRAL_API_KEY",
    default: null,
    description: "API key sent as `Authorization: Bearer <key>` (needed when the scheduler has CORRAL_API_KEYS).",
  },
];

/** Configuration of the client commands. */
export interface ClientConfig {
  url: string;
  apiKey: string | undefined;
}

/** Reads the client variables from `env`. A bad value throws a ConfigError naming the variable. */
export function loadConfig(env: Env): ClientConfig {
  const raw = env.CORRAL_URL?.trim() || "http://127.0.0.1:8080";
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(
      "CORRAL_URL",
      `expected an http(s) URL such as http://127.0.0.1:8080 (got ${JSON.stringify(raw)})`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(
      "CORRAL_URL",
      `expected an http(s) URL such as http://127.0.0.1:8080 (got ${JSON.stringify(raw)})`,
    );
  }
  const apiKey = env.CORRAL_API_KEY?.trim();
  return { url: raw.replace(/\/+$/, ""), apiKey: apiKey ? apiKey : undefined };
}
