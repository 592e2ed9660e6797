import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { repoRootDir } from "../support/models.js";

/** The real `corral` bin, as a user runs it. */
export const CORRAL_BIN = resolve(repoRootDir, "apps/cli/bin/corral.js");

export interface CorralResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment for a spawned `corral`: this process's, minus the CORRAL_* variables the
 * test runner may carry, plus `extra`. The tests run after `npm run build`, so the bin
 * shim's rebuild check is skipped (it is tested on its own in bin-shim.test.ts).
 */
export function corralEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith("CORRAL_")) env[name] = value;
  return { ...env, CORRAL_SKIP_BUILD: "1", ...extra };
}

/** Spawns `node apps/cli/bin/corral.js <args>` and collects its output. */
export function spawnCorral(args: readonly string[], env: NodeJS.ProcessEnv = corralEnv()): ChildProcess {
  return spawn(process.execPath, [CORRAL_BIN, ...args], { cwd: repoRootDir, env, stdio: ["ignore", "pipe", "pipe"] });
}

/** Runs `corral <args>` to the end. */
export function runCorral(args: readonly string[], env?: NodeJS.ProcessEnv): Promise<CorralResult> {
  const child = spawnCorral(args, env);
  return collect(child);
}

export function collect(child: ChildProcess): Promise<CorralResult> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((done, fail) => {
    child.once("error", fail);
    child.once("close", (code, signal) => done({ code, signal, stdout, stderr }));
  });
}

export { processExists } from "../support/processes.js";

/** A stack trace line, as node prints them. */
export const STACK_LINE = /^\s+at .+\(?.+:\d+:\d+\)?$/m;
