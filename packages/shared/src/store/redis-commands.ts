import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ChainableCommander, Redis } from "ioredis";

/**
 * Corral's Lua scripts, in BullMQ's shape: one file per script in `commands/`, named
 * `<name>-<number of keys>.lua` (or `<name>.lua` when the caller passes the number), each
 * opening with a header that names its KEYS, ARGV and result. Shared pieces live in
 * `commands/includes/` and come in through a `--- @include "includes/<name>"` line,
 * resolved when the scripts are read (each piece once per script).
 *
 * Every script is registered on a connection once with ioredis's `defineCommand`, so it
 * goes out as EVALSHA (ioredis sends the full text only the first time on each socket,
 * and again after NOSCRIPT). Every key a script touches comes in KEYS, named by
 * {@link RedisKeys}, so the scripts work on Redis Cluster; `redis-commands.test.ts`
 * checks that statically.
 *
 * The files are read from the package's `src/store/commands/` folder, found relative to
 * the package root, so the same path works from `src/` (tsx) and from `dist/` (the
 * Dockerfile copies the folder into the image).
 */

/** The scripts and what each returns. */
export interface CommandResults {
  admitAndCreateJob: number;
  admitBatch: number;
  admitJobs: [number, number];
  closeBatch: number;
  enterTenant: number;
  holdFair: number;
  leaveTenant: string[];
  parkJob: number;
  pruneQueued: [number, number, number];
  recordLine: number;
  recoverJobs: (string | number)[];
  releaseLease: number;
  releaseFair: (string | number)[];
  releaseQueued: number;
  renewLease: number;
  saveIngestProgress: number;
  settleFair: number;
  sweepTenant: string[];
  syncLane: number;
  transitionBatch: string | null;
  transitionJob: string | null;
}

export type CommandName = keyof CommandResults;

/** One script, read and with its includes resolved. */
export interface LuaScript {
  name: CommandName;
  /** Fixed number of KEYS; null when each call says how many. */
  numberOfKeys: number | null;
  /** The script's text, includes resolved. */
  lua: string;
  /** The file it came from. */
  path: string;
}

/** A value passed in ARGV. */
export type CommandArg = string | number;

/** The folder of the `.lua` files: `<package root>/src/store/commands`, from `src/store/` and `dist/store/` alike. */
export const COMMANDS_DIR = fileURLToPath(new URL("../../src/store/commands/", import.meta.url));

const INCLUDE = /^--- @include "([^"]+)"[ \t]*$/gm;
const FILE_NAME = /^([A-Za-z]+)(?:-(\d+))?\.lua$/;

let scripts: ReadonlyMap<CommandName, LuaScript> | undefined;

/** Every script, read once per process. */
export function luaScripts(): ReadonlyMap<CommandName, LuaScript> {
  scripts ??= readScripts(COMMANDS_DIR);
  return scripts;
}

/** One script. @throws Error when there is no such file (a name without its `.lua`). */
export function luaScript(name: CommandName): LuaScript {
  const script = luaScripts().get(name);
  if (!script) throw new Error(`no Lua script ${name} in ${COMMANDS_DIR}`);
  return script;
}

function readScripts(dir: string): Map<CommandName, LuaScript> {
  const found = new Map<CommandName, LuaScript>();
  for (const file of readdirSync(dir).sort()) {
    const match = FILE_NAME.exec(file);
    if (!match) continue;
    const name = match[1] as CommandName;
    if (found.has(name)) throw new Error(`two Lua scripts named ${name} in ${dir}`);
    const path = join(dir, file);
    found.set(name, {
      name,
      numberOfKeys: match[2] === undefined ? null : Number(match[2]),
      lua: resolveIncludes(dir, readFileSync(path, "utf8"), [path], new Set()),
      path,
    });
  }
  return found;
}

/** Replaces each `--- @include` line with the piece's text (itself resolved); a piece already in the script is left out. */
function resolveIncludes(dir: string, text: string, stack: readonly string[], included: Set<string>): string {
  return text.replace(INCLUDE, (_line, name: string) => {
    const path = join(dir, `${name}.lua`);
    if (stack.includes(path)) throw new Error(`Lua include cycle: ${[...stack, path].join(" → ")}`);
    if (included.has(path)) return "";
    included.add(path);
    return resolveIncludes(dir, readFileSync(path, "utf8"), [...stack, path], included).trimEnd();
  });
}

/** The name a script is defined under on a connection (`corralTransitionJob`). */
export const commandMethod = (name: CommandName): string => `corral${name[0]!.toUpperCase()}${name.slice(1)}`;

type ScriptMethod = (...args: CommandArg[]) => Promise<unknown>;

/**
 * Defines every script on the connection (ioredis `defineCommand`, once per connection;
 * a connection that has them, or inherits them, is left as it is). Pipelines made from
 * the connection afterwards have them too.
 */
export function defineCommands(redis: Redis): Redis {
  const methods = redis as unknown as Record<string, unknown>;
  for (const script of luaScripts().values()) {
    if (typeof methods[commandMethod(script.name)] === "function") continue;
    redis.defineCommand(commandMethod(script.name), {
      lua: script.lua,
      ...(script.numberOfKeys === null ? {} : { numberOfKeys: script.numberOfKeys }),
    });
  }
  return redis;
}

function commandArgs(name: CommandName, keys: readonly string[], args: readonly CommandArg[]): CommandArg[] {
  const { numberOfKeys } = luaScript(name);
  if (numberOfKeys === null) return [keys.length, ...keys, ...args];
  if (keys.length !== numberOfKeys) throw new Error(`${name} takes ${numberOfKeys} keys, not ${keys.length}`);
  return [...keys, ...args];
}

/** Runs a script on the connection by its SHA (defining the scripts there first if needed). */
export function runCommand<N extends CommandName>(
  redis: Redis,
  name: N,
  keys: readonly string[],
  args: readonly CommandArg[],
): Promise<CommandResults[N]> {
  const method = (defineCommands(redis) as unknown as Record<string, ScriptMethod>)[commandMethod(name)]!;
  return method.apply(redis, commandArgs(name, keys, args)) as Promise<CommandResults[N]>;
}

/** A pipeline of the connection that has the scripts (see {@link queueCommand}). */
export function commandPipeline(redis: Redis): ChainableCommander {
  return defineCommands(redis).pipeline();
}

/** Adds a script call to a pipeline made by {@link commandPipeline}. */
export function queueCommand(
  pipeline: ChainableCommander,
  name: CommandName,
  keys: readonly string[],
  args: readonly CommandArg[],
): void {
  const method = (pipeline as unknown as Record<string, ScriptMethod | undefined>)[commandMethod(name)];
  if (!method) throw new Error(`the pipeline has no ${name}: make it with commandPipeline`);
  void method.apply(pipeline, commandArgs(name, keys, args));
}

/**
 * SCRIPT LOAD of every script (what a connection would otherwise do on first use);
 * returns each script's SHA. For checks and warm-up.
 */
export async function loadCommands(redis: Redis): Promise<Map<CommandName, string>> {
  const shas = new Map<CommandName, string>();
  for (const script of luaScripts().values()) shas.set(script.name, (await redis.script("LOAD", script.lua)) as string);
  return shas;
}
