import { readFile, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Command } from "commander";
import type { ModelEntry } from "../client/scheduler-client.js";
import type { CliContext } from "../context.js";
import { CliError, EXIT_USAGE } from "../errors.js";
import { findModelFile, catalogDefaults, listLocalModels, type LocalModel } from "../models/local-models.js";
import { inspectModel, type ModelInspection } from "../models/inspect-model.js";
import { PullError, type PullErrorCode } from "../models/errors.js";
import { MODELS_ENV, loadModelsConfig, type ModelsConfig } from "../models/models-env.js";
import { partFileName, pullModel } from "../models/pull-model.js";
import { barProgress, lineProgress } from "../models/pull-progress.js";
import { splitPartOf, splitParts } from "../models/model-ref.js";
import { addEnvOptions, type EnvOptionMap } from "../options/env-options.js";
import { envWithFlags, loadOrExplain } from "../options/with-flags.js";
import { formatBytes, formatTable } from "../output/table.js";
import { withClientOptions } from "./client-options.js";

/** The scheduler's per-folder settings file (its MODELS_FILE_NAME; not imported, to keep the scheduler out of `corral models rm`). */
const MODELS_FILE = "models.yaml";

/** The `corral models` table. */
export function formatModelsTable(models: readonly ModelEntry[]): string {
  if (models.length === 0) return "no models (add .gguf files to the scheduler's CORRAL_MODELS_DIR)";
  const rows = models.map(({ id, corral: c }) => [
    id,
    c?.file ?? "-",
    c?.architecture ?? "-",
    c ? String(c.parameters) : "-",
    c ? String(c.context_size) : "-",
    c ? String(c.sequences) : "-",
    formatBytes(c?.requirement_bytes),
  ]);
  return formatTable(["ID", "FILE", "ARCH", "PARAMS", "CONTEXT", "SEQ", "NEEDS (VRAM)"], rows);
}

/** `corral models list`: the models folder. */
export function formatLocalModelsTable(models: readonly LocalModel[], modelsDir: string): string {
  if (models.length === 0)
    return `no .gguf model in ${modelsDir} (\`corral models pull hf:<owner>/<repo>:Q4_K_M\` downloads one)`;
  const rows = models.map((m) => [
    m.file + (m.parts.length > 1 ? ` (+${m.parts.length - 1} parts)` : ""),
    formatBytes(m.size_bytes),
    m.architecture ?? "-",
    m.quantization ?? "-",
    m.parameters === null ? "-" : String(m.parameters),
    m.catalog_ids.length > 0 ? `yes: ${m.catalog_ids.join(", ")}` : `no: ${m.problem ?? "skipped"}`,
  ]);
  return formatTable(["FILE", "SIZE", "ARCH", "QUANT", "PARAMS", "SERVED"], rows);
}

/** `corral models inspect`: the header and the estimates. */
export function formatInspection(m: ModelInspection): string {
  const facts = [
    ["file", m.path],
    ["size", `${formatBytes(m.size_bytes)} (${m.size_bytes} bytes)`],
    ["name", m.name ?? "-"],
    ["architecture", m.architecture],
    ["quantization", m.quantization ?? "-"],
    ["parameters", String(m.parameters)],
    ["layers", String(m.layers)],
    ["train context", m.train_context_size > 0 ? String(m.train_context_size) : "not given"],
    ["embedding", m.embedding_length === null ? "-" : String(m.embedding_length)],
    ["chat template", m.has_chat_template ? "yes" : "no"],
  ];
  const width = Math.max(...facts.map(([k]) => k!.length));
  const estimates = formatTable(
    ["CONTEXT", "SEQ", "VRAM (full offload)", "RAM (CPU only)"],
    m.estimates.map((e) => [
      String(e.context_size),
      String(e.sequences),
      formatBytes(e.vram_bytes),
      formatBytes(e.ram_bytes),
    ]),
  );
  const metadata = Object.entries(m.metadata).map(
    ([k, v]) => `  ${k} = ${typeof v === "string" ? JSON.stringify(v) : String(v)}`,
  );
  return [
    ...facts.map(([k, v]) => `${k!.padEnd(width)}  ${v}`),
    "",
    "estimates (node-llama-cpp's formula, as the scheduler computes a job's requirement):",
    estimates,
    "",
    "metadata:",
    ...metadata,
  ].join("\n");
}

/** A PullError's message plus the command's exit code (2 for a bad reference). */
function pullFailure(error: PullError): CliError {
  const exitCode: Partial<Record<PullErrorCode, number>> = { bad_ref: EXIT_USAGE };
  return new CliError(error.message, {
    exitCode: exitCode[error.code] ?? 1,
    ...(error.hint === undefined ? {} : { hint: error.hint }),
    cause: error,
  });
}

function modelsConfig(ctx: CliContext, command: Command, map: EnvOptionMap): ModelsConfig {
  return loadOrExplain(loadModelsConfig, envWithFlags(ctx.env, command, map));
}

function pullCommand(ctx: CliContext): Command {
  const command = new Command("pull")
    .description(
      "download a GGUF model into the models folder: hf:<owner>/<repo>/<file>.gguf, hf:<owner>/<repo>:<quant> or an https:// URL (resumes, checks sha256; HF_TOKEN for gated models)",
    )
    .argument("<ref>", "what to download")
    .option("--sha256 <hex>", "the sha256 the file must have (checked besides Hugging Face's own)")
    .option("--force", "replace a file of the same name already in the folder")
    .option("--json", "print the pulled files as JSON");
  const map = addEnvOptions(command, MODELS_ENV);
  command.action(async (ref: string, opts: { sha256?: string; force?: boolean; json?: boolean }) => {
    const config = modelsConfig(ctx, command, map);
    const progress =
      (ctx.io.isErrTty ?? ctx.io.isTty) && !opts.json ? barProgress() : lineProgress((line) => ctx.io.err(line));
    let result;
    try {
      result = await pullModel(ref, {
        modelsDir: config.modelsDir,
        endpoint: config.hfEndpoint,
        token: config.hfToken,
        sha256: opts.sha256,
        force: opts.force ?? false,
        progress,
      });
    } catch (error) {
      if (error instanceof PullError) throw pullFailure(error);
      throw error;
    }
    if (opts.json) {
      ctx.io.out(JSON.stringify({ already_present: result.alreadyPresent, files: result.files }, null, 2));
      return;
    }
    const first = result.files[0]!;
    if (result.alreadyPresent) {
      ctx.io.out(`${first.path} is already there (${formatBytes(first.size)}); --force downloads it again`);
      return;
    }
    for (const file of result.files) {
      ctx.io.out(
        `${file.path}  ${formatBytes(file.size)}  sha256 ${file.sha256}${file.verified ? " (verified)" : " (not verified: the server gave no hash)"}`,
      );
    }
    ctx.io.out(
      `the scheduler serves it as ${first.name.replace(/(-\d{5}-of-\d{5})?\.gguf$/i, "")} once it rescans the folder`,
    );
  });
  return command;
}

function listCommand(ctx: CliContext): Command {
  const command = new Command("list")
    .description(
      "list the models folder: size, architecture and quantization from each GGUF header, and whether the catalog serves it",
    )
    .option("--json", "print the models as JSON");
  const map = addEnvOptions(
    command,
    MODELS_ENV.filter((s) => s.name === "CORRAL_MODELS_DIR"),
  );
  command.action(async (opts: { json?: boolean }) => {
    const config = modelsConfig(ctx, command, map);
    const modelsDir = resolve(config.modelsDir);
    const models = await listLocalModels(modelsDir, catalogDefaults(ctx.env));
    ctx.io.out(opts.json ? JSON.stringify(models, null, 2) : formatLocalModelsTable(models, modelsDir));
  });
  return command;
}

function inspectCommand(ctx: CliContext): Command {
  const command = new Command("inspect")
    .description("print a model's GGUF metadata and its VRAM and RAM estimates at a few context sizes")
    .argument("<model>", "a file in the models folder, a path, or a catalog id")
    .option("--sequences <n>", "parallel sequences to estimate for", "1")
    .option("--context-size <n...>", "context sizes to estimate at (default: 512 up to the training context)")
    .option("--json", "print the inspection as JSON");
  const map = addEnvOptions(
    command,
    MODELS_ENV.filter((s) => s.name === "CORRAL_MODELS_DIR"),
  );
  command.action(async (name: string, opts: { sequences: string; contextSize?: string[]; json?: boolean }) => {
    const config = modelsConfig(ctx, command, map);
    const positive = (text: string, flag: string) => {
      const n = Number(text);
      if (!Number.isInteger(n) || n < 1)
        throw new CliError(`${flag} expects a positive integer (got ${JSON.stringify(text)})`, {
          exitCode: EXIT_USAGE,
        });
      return n;
    };
    const sequences = positive(opts.sequences, "--sequences");
    const sizes = opts.contextSize?.map((s) => positive(s, "--context-size"));
    const modelsDir = resolve(config.modelsDir);
    const found = await findModelFile(name, modelsDir, catalogDefaults(ctx.env));
    if (!found)
      throw new CliError(`no model ${JSON.stringify(name)} in ${modelsDir}`, {
        hint: "`corral models list` shows the folder; pass a file name, a path, or a catalog id",
      });
    let inspection: ModelInspection;
    try {
      inspection = await inspectModel(found.path, sequences, sizes);
    } catch (error) {
      const reason = (error as { reason?: string }).reason;
      if (reason === undefined) throw error;
      throw new CliError(`${found.path} is not a usable GGUF model: ${reason}`, {
        hint: "download it again (`corral models pull … --force`); a cut-short file is what an interrupted copy leaves",
        cause: error,
      });
    }
    ctx.io.out(opts.json ? JSON.stringify(inspection, null, 2) : formatInspection(inspection));
  });
  return command;
}

function rmCommand(ctx: CliContext): Command {
  const command = new Command("rm")
    .description("delete a model from the models folder (all parts of a split model, and any partial download)")
    .argument("<model>", "a file in the models folder or a catalog id")
    .option("-y, --yes", "do not ask for confirmation");
  const map = addEnvOptions(
    command,
    MODELS_ENV.filter((s) => s.name === "CORRAL_MODELS_DIR"),
  );
  command.action(async (name: string, opts: { yes?: boolean }) => {
    const config = modelsConfig(ctx, command, map);
    const modelsDir = resolve(config.modelsDir);
    const found = name.includes("/") ? null : await findModelFile(name, modelsDir, catalogDefaults(ctx.env));
    if (!found || resolve(found.path, "..") !== modelsDir)
      throw new CliError(`no model ${JSON.stringify(name)} in ${modelsDir}`, {
        hint: "`corral models list` shows what is there; rm takes a file name or a catalog id, not a path",
      });
    const files = splitPartOf(found.file) ? splitParts(found.file) : [found.file];
    const targets = [...files, ...files.map(partFileName)].map((f) => join(modelsDir, f));
    if (!opts.yes) {
      if (!ctx.io.ask)
        throw new CliError(`not removing ${found.file} without confirmation`, {
          exitCode: EXIT_USAGE,
          hint: "pass --yes to delete without asking (stdin is not a terminal)",
        });
      const answer = await ctx.io.ask(`delete ${files.map((f) => join(modelsDir, f)).join(", ")}? [y/N] `);
      if (!/^y(es)?$/i.test(answer.trim())) {
        ctx.io.out("nothing removed");
        return;
      }
    }
    for (const target of targets) await rm(target, { force: true });
    ctx.io.out(`removed ${files.join(", ")} from ${modelsDir}`);
    const yaml = await readFile(join(modelsDir, MODELS_FILE), "utf8").catch(() => "");
    if (yaml.includes(found.file))
      ctx.io.err(
        `note: ${MODELS_FILE} still lists ${found.file}; the scheduler warns on each scan until its entry goes`,
      );
    ctx.io.out(
      "a running scheduler drops it from the catalog within seconds; jobs queued for it fail with model_removed after CORRAL_MODEL_REMOVED_GRACE_MS",
    );
  });
  return command;
}

/** `corral models`: the scheduler's catalog; `pull`, `list`, `rm` and `inspect` work on the models folder. */
export function modelsCommand(ctx: CliContext): Command {
  const command = new Command("models")
    .description(
      "list the models the scheduler serves (GET /v1/models); pull, list, rm and inspect work on the models folder",
    )
    .enablePositionalOptions()
    .option("--json", "print the models as JSON");
  const client = withClientOptions(command, ctx);
  command.action(async (opts: { json?: boolean }) => {
    const models = await client().listModels();
    ctx.io.out(opts.json ? JSON.stringify(models, null, 2) : formatModelsTable(models));
  });
  for (const sub of [pullCommand(ctx), listCommand(ctx), rmCommand(ctx), inspectCommand(ctx)]) {
    command.addCommand(sub.exitOverride().showHelpAfterError("(run with --help for usage)"));
  }
  return command;
}
