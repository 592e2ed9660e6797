import { Option, type Command } from "commander";
import { variableToFlag } from "@corral/shared";

/**
 * One environment variable an app reads, as the apps list them (`SCHEDULER_ENV`,
 * `WORKER_ENV`). Every variable gets a matching flag: `CORRAL_REDIS_URL` ↔ `--redis-url`.
 */
export interface EnvVariableSpec {
  readonly name: string;
  readonly default?: string | number | boolean | null | undefined;
  readonly description: string;
  /** When the app says so; otherwise a variable whose default is true/false is a switch. */
  readonly type?: string;
  readonly kind?: string;
  readonly boolean?: boolean;
  readonly secret?: boolean;
}

/** Whether a variable becomes a switch (`--cpu`, `--no-cpu`) rather than `--flag <value>`. */
export function isBooleanVariable(spec: EnvVariableSpec): boolean {
  if (spec.boolean !== undefined) return spec.boolean;
  const declared = spec.type ?? spec.kind;
  if (declared !== undefined) return declared === "boolean";
  return typeof spec.default === "boolean" || spec.default === "true" || spec.default === "false";
}

/** Merges spec lists, keeping the first entry of each variable name. */
export function mergeSpecs(...lists: readonly (readonly EnvVariableSpec[])[]): EnvVariableSpec[] {
  const seen = new Map<string, EnvVariableSpec>();
  for (const list of lists) for (const spec of list) if (!seen.has(spec.name)) seen.set(spec.name, spec);
  return [...seen.values()];
}

/** What `--help` shows after the description: the variable and its default. */
function helpSuffix(spec: EnvVariableSpec): string {
  const hasDefault = spec.default !== undefined && spec.default !== null && spec.default !== "";
  const shown = spec.secret && hasDefault ? "(set)" : JSON.stringify(String(spec.default));
  return hasDefault ? `[env ${spec.name}, default ${shown}]` : `[env ${spec.name}]`;
}

/** Maps option attribute names (commander's camelCase keys) to the variable each sets. */
export type EnvOptionMap = Map<string, { variable: string; boolean: boolean }>;

/**
 * Adds one option per variable to `command`. Options carry no commander default, so an
 * unset flag leaves the environment's value (or the app's default) in place.
 * Variables whose flag `command` already defines are skipped.
 */
export function addEnvOptions(command: Command, specs: readonly EnvVariableSpec[]): EnvOptionMap {
  const map: EnvOptionMap = new Map();
  const taken = new Set(command.options.map((o) => o.long));
  for (const spec of specs) {
    const flag = variableToFlag(spec.name);
    if (taken.has(flag)) continue;
    taken.add(flag);
    const description = `${spec.description.trim()} ${helpSuffix(spec)}`;
    if (isBooleanVariable(spec)) {
      const on = new Option(flag, description);
      const off = new Option(`--no-${flag.slice(2)}`, `turn ${flag} off`).hideHelp();
      command.addOption(on).addOption(off);
      map.set(on.attributeName(), { variable: spec.name, boolean: true });
    } else {
      const option = new Option(`${flag} <value>`, description);
      command.addOption(option);
      map.set(option.attributeName(), { variable: spec.name, boolean: false });
    }
  }
  return map;
}

/** The variables the given flags set: `{ "--port": "abc" }` → `{ CORRAL_PORT: "abc" }`. */
export function flagsAsVariables(opts: Record<string, unknown>, map: EnvOptionMap): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, { variable }] of map) {
    const value = opts[key];
    if (value === undefined) continue;
    out[variable] = typeof value === "boolean" ? String(value) : String(value as string);
  }
  return out;
}
