import { Command, CommanderError } from "commander";
import { CORRAL_VERSION, type Env } from "@corral/shared";
import { batchCommand } from "./commands/batch.js";
import { doctorCommand } from "./commands/doctor.js";
import { gpusCommand } from "./commands/gpus.js";
import { modelsCommand } from "./commands/models.js";
import { schedulerCommand } from "./commands/scheduler.js";
import { submitCommand } from "./commands/submit.js";
import { transcribeCommand } from "./commands/transcribe.js";
import { upCommand } from "./commands/up.js";
import { workerCommand } from "./commands/worker.js";
import { quotaCommand } from "./commands/quota.js";
import { workersCommand } from "./commands/workers.js";
import type { CliContext } from "./context.js";
import { CliError, EXIT_USAGE, ExitCode, configErrorToCliError, isConfigError } from "./errors.js";
import type { EnvVariableSpec } from "./options/env-options.js";
import { processIo, type CliIo } from "./output/io.js";

/** Which apps' variable lists each command turns into flags. Others load neither app. */
const NEEDS: Record<string, readonly ("scheduler" | "worker")[]> = {
  scheduler: ["scheduler"],
  worker: ["worker"],
  up: ["scheduler", "worker"],
  gpus: ["worker"],
  doctor: ["worker"],
};

/** The subcommand `argv` names (`corral help up` names `up`). */
function invokedCommand(argv: readonly string[]): string | undefined {
  const words = argv.filter((a) => !a.startsWith("-"));
  return words[0] === "help" ? words[1] : words[0];
}

async function loadSpecs(command: string | undefined) {
  const needs = (command && NEEDS[command]) || [];
  const [schedulerEnv, workerEnv] = await Promise.all([
    needs.includes("scheduler")
      ? import("@corral/scheduler").then((m) => m.SCHEDULER_ENV as readonly EnvVariableSpec[])
      : [],
    needs.includes("worker") ? import("@corral/worker").then((m) => m.WORKER_ENV as readonly EnvVariableSpec[]) : [],
  ]);
  return { schedulerEnv, workerEnv };
}

/** Builds the `corral` program. Only the invoked command's app variables need to be loaded. */
export function buildProgram(ctx: CliContext): Command {
  const program = new Command("corral")
    .description("Corral: a job orchestrator for LLM inference on GPUs (llama.cpp workers, BullMQ on Redis)")
    .version(CORRAL_VERSION, "-V, --version")
    // `corral models list --json`: options after a subcommand are the subcommand's.
    .enablePositionalOptions()
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({
      writeOut: (text) => ctx.io.out(text.replace(/\n$/, "")),
      writeErr: (text) => ctx.io.err(text.replace(/\n$/, "")),
    })
    .exitOverride();
  const commands = [
    upCommand(ctx),
    schedulerCommand(ctx),
    workerCommand(ctx),
    submitCommand(ctx),
    transcribeCommand(ctx),
    batchCommand(ctx),
    modelsCommand(ctx),
    workersCommand(ctx),
    quotaCommand(ctx),
    gpusCommand(ctx),
    doctorCommand(ctx),
  ];
  for (const command of commands) {
    program.addCommand(
      command
        .exitOverride()
        .showHelpAfterError("(run with --help for usage)")
        .configureOutput(program.configureOutput()),
    );
    for (const sub of command.commands) sub.configureOutput(program.configureOutput());
  }
  return program;
}

/** Reports an error as `error: …` (plus `hint: …`) and returns the exit code. Never prints a stack. */
export function reportError(error: unknown, io: CliIo, verbose = false): number {
  if (error instanceof ExitCode) return error.exitCode;
  if (error instanceof CommanderError) {
    // --help and --version exit 0; usage errors (and `corral` alone, which shows the help) exit 2.
    return error.exitCode === 0 ? 0 : EXIT_USAGE;
  }
  const cli = isConfigError(error) ? configErrorToCliError(error) : error;
  if (cli instanceof CliError) {
    if (cli.message) io.err(`error: ${cli.message}`);
    if (cli.hint) io.err(`hint: ${cli.hint}`);
    return cli.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  io.err(`error: ${message}`);
  if (verbose && error instanceof Error && error.stack) io.err(error.stack);
  else io.err("hint: set CORRAL_DEBUG=1 for the stack trace");
  return 1;
}

/** Runs `corral <argv>` and returns the exit code. `env` is the process environment. */
export async function main(argv: readonly string[], env: Env, io: CliIo = processIo()): Promise<number> {
  try {
    const specs = await loadSpecs(invokedCommand(argv));
    const program = buildProgram({ env, io, ...specs });
    await program.parseAsync([...argv], { from: "user" });
    return 0;
  } catch (error) {
    return reportError(error, io, env.CORRAL_DEBUG === "1");
  }
}
