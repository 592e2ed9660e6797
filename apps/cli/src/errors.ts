import { variableToFlag } from "@corral/shared";

/** An error the CLI reports as one `error:` line (plus an optional hint), without a stack. */
export class CliError extends Error {
  override readonly name = "CliError";
  readonly exitCode: number;
  readonly hint: string | undefined;
  constructor(message: string, options: { exitCode?: number; hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.exitCode = options.exitCode ?? 1;
    this.hint = options.hint;
  }
}

/** Exit code for bad configuration or usage. */
export const EXIT_USAGE = 2;

interface ConfigErrorLike {
  readonly code: string;
  readonly variable: string;
  readonly message: string;
}

/** A ConfigError from any package copy (branches on `code`, not on the class identity). */
export function isConfigError(error: unknown): error is ConfigErrorLike {
  return (
    error instanceof Error &&
    (error as { code?: unknown }).code === "invalid_config" &&
    typeof (error as { variable?: unknown }).variable === "string"
  );
}

/** Turns a ConfigError into the CLI's message: `CORRAL_PORT: expected …` plus the flag to use. */
export function configErrorToCliError(error: ConfigErrorLike): CliError {
  const flag = variableToFlag(error.variable);
  return new CliError(error.message, {
    exitCode: EXIT_USAGE,
    hint: error.variable.startsWith("CORRAL_")
      ? `set ${flag} <value> or the ${error.variable} environment variable`
      : undefined,
    cause: error,
  });
}

/** Ends a command with `exitCode` after it has already said why. `main` prints nothing for it. */
export class ExitCode extends Error {
  override readonly name = "ExitCode";
  readonly exitCode: number;
  constructor(exitCode: number) {
    super(`exit ${exitCode}`);
    this.exitCode = exitCode;
  }
}

/**
 * Runs a start step; a port already in use becomes a CliError naming the flag that picks
 * another port. Other errors pass through.
 */
export async function explainStartError<T>(start: () => Promise<T>, portFlag: string): Promise<T> {
  try {
    return await start();
  } catch (error) {
    const { code, port } = error as { code?: unknown; port?: unknown };
    if (code === "EADDRINUSE") {
      throw new CliError(`port ${typeof port === "number" ? port : "?"} is already in use`, {
        hint: `stop what uses it, or pick another port with ${portFlag} <port> (0 picks a free one)`,
        cause: error,
      });
    }
    throw error;
  }
}
