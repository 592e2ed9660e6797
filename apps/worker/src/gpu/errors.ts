import { CorralError } from "@corral/shared";

/** Why an nvidia-smi call gave no usable answer. */
export type NvidiaSmiFailure = "missing" | "exit" | "timeout" | "unparsable" | "spawn";

/** How much of stdout/stderr an error message carries. */
const OUTPUT_EXCERPT_CHARS = 500;

/** Shortens command output for an error message: trimmed, one line per line, at most 500 characters. */
export function outputExcerpt(text: string, limit = OUTPUT_EXCERPT_CHARS): string {
  const trimmed = text.replace(/\r\n/g, "\n").trim();
  return trimmed.length <= limit ? trimmed : `${trimmed.slice(0, limit)}… (${trimmed.length - limit} more characters)`;
}

/**
 * nvidia-smi ran but gave no usable answer: it exited non-zero, ran past its timeout,
 * printed something that does not parse, or vanished between discovery and a sample.
 * Branch on `reason`, never on the message. A missing binary during discovery is not an
 * error (discovery answers CPU mode); it only surfaces here from `sampleGpus`.
 */
export class NvidiaSmiError extends CorralError {
  override readonly name = "NvidiaSmiError";
  readonly reason: NvidiaSmiFailure;
  /** The command line as run, e.g. `nvidia-smi -L`. */
  readonly command: string;
  /** The exit status; null when it never exited on its own (missing, timeout, killed). */
  readonly exitCode: number | null;
  /** An excerpt of what came back (stdout, then stderr). */
  readonly output: string;

  constructor(
    reason: NvidiaSmiFailure,
    details: { command: string; exitCode: number | null; output: string; detail: string; cause?: unknown },
  ) {
    const output = outputExcerpt(details.output);
    super(`\`${details.command}\` ${details.detail}${output ? `: ${output}` : " (no output)"}`, {
      code: `nvidia_smi_${reason}`,
      cause: details.cause,
    });
    this.reason = reason;
    this.command = details.command;
    this.exitCode = details.exitCode;
    this.output = output;
  }
}

/** Text from nvidia-smi that the parsers cannot read. Pure parsers throw it; discovery wraps it in `NvidiaSmiError`. */
export class NvidiaSmiParseError extends Error {
  override readonly name = "NvidiaSmiParseError";
  /** Which parser gave up: `query-gpu` or `list-gpus`. */
  readonly format: string;
  /** 1-based line of the input where it gave up, when known. */
  readonly line: number | null;

  constructor(format: string, message: string, line: number | null = null) {
    super(`${format}: ${message}${line === null ? "" : ` (line ${line})`}`);
    this.format = format;
    this.line = line;
  }
}

/** A command ran past its time limit and was killed. `code` is `ETIMEDOUT`, like node's own timeout errors. */
export class CommandTimeoutError extends Error {
  override readonly name = "CommandTimeoutError";
  readonly code = "ETIMEDOUT";
  readonly command: string;
  readonly timeoutMs: number;
  readonly stdout: string;
  readonly stderr: string;

  constructor(command: string, timeoutMs: number, stdout = "", stderr = "") {
    super(`\`${command}\` did not finish within ${timeoutMs} ms and was killed`);
    this.command = command;
    this.timeoutMs = timeoutMs;
    this.stdout = stdout;
    this.stderr = stderr;
  }
}
