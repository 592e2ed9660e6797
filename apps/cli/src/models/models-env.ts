import { ConfigError, type Env } from "@corral/shared";
import type { EnvVariableSpec } from "../options/env-options.js";

/** The variables `corral models pull|list|rm|inspect` read. */
export const MODELS_ENV: readonly EnvVariableSpec[] = [
  {
    name: "CORRAL_MODELS_DIR",
    default: "./models",
    description: "Folder of .gguf files (and an optional models.yaml) that make up the model catalog.",
  },
  {
    name: "CORRAL_HF_ENDPOINT",
    default: null,
    description:
      "Base URL of Hugging Face for `corral models pull` (a mirror, or a local stand-in in tests). Unset: HF_ENDPOINT, else https://huggingface.co.",
  },
];

/** Read from the environment only (no flag: a token on the command line ends up in shell history). */
export const HF_TOKEN_VARIABLE = "HF_TOKEN";

export interface ModelsConfig {
  modelsDir: string;
  /** Without a trailing slash. */
  hfEndpoint: string;
  hfToken: string | undefined;
}

/** Reads the models commands' variables. A bad endpoint throws a ConfigError naming its variable. */
export function loadModelsConfig(env: Env): ModelsConfig {
  const own = env.CORRAL_HF_ENDPOINT?.trim();
  const variable = own ? "CORRAL_HF_ENDPOINT" : "HF_ENDPOINT";
  const raw = own || env.HF_ENDPOINT?.trim() || "https://huggingface.co";
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(
      variable,
      `expected an http(s) URL such as https://huggingface.co (got ${JSON.stringify(raw)})`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new ConfigError(
      variable,
      `expected an http(s) URL such as https://huggingface.co (got ${JSON.stringify(raw)})`,
    );
  const token = env[HF_TOKEN_VARIABLE]?.trim();
  return {
    modelsDir: env.CORRAL_MODELS_DIR?.trim() || "./models",
    hfEndpoint: raw.replace(/\/+$/, ""),
    hfToken: token ? token : undefined,
  };
}
