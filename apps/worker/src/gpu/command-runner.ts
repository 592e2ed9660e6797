import { execFile } from "node:child_process";
import { CommandTimeoutError } from "./errors.js";

export interface CommandResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface CommandRunOptions {
  /** Kill the command after this many milliseconds and reject with `CommandTimeoutError`. */
  timeoutMs: number;
  /** The child's whole environment. Omitted: the child inherits this process's environment. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs a program without a shell and resolves with what it printed and its exit status,
 * also when the status is non-zero. Rejects with an error whose `code` is `ENOENT` when
 * the program does not exist, and with `CommandTimeoutError` (`code` `ETIMEDOUT`) when it
 * runs past `timeoutMs`.
 */
export type CommandRunner = (
  file: string,
  args: readonly string[],
  options: CommandRunOptions,
) => Promise<CommandResult>;

/** Output beyond this is an error: nvidia-smi -q -x on 8 GPUs is about 1 MiB. */
const MAX_OUTPUT_BYTES = 32 * 1024 * 1024;

/** The real `CommandRunner`: `child_process.execFile`, killed with SIGKILL on timeout. */
export const execFileRunner: CommandRunner = (file, args, options) =>
  new Promise<CommandResult>((resolve, reject) => {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, options.timeoutMs);
    execFile(
      file,
      args,
      {
        encoding: "utf8",
        env: options.env,
        maxBuffer: MAX_OUTPUT_BYTES,
        signal: controller.signal,
        killSignal: "SIGKILL",
        windowsHide: true,
      },
      (error, stdout, stderr) => {
        clearTimeout(timer);
        if (timedOut) {
          reject(new CommandTimeoutError([file, ...args].join(" "), options.timeoutMs, stdout, stderr));
          return;
        }
        if (error === null) {
          resolve({ stdout, stderr, exitCode: 0 });
          return;
        }
        // A numeric code is the exit status; a string code (ENOENT, EACCES, ERR_…) means it never ran right.
        if (typeof error.code === "number") {
          resolve({ stdout, stderr, exitCode: error.code });
          return;
        }
        reject(error);
      },
    );
  });
