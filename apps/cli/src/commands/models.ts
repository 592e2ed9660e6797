import { Command } from "commander";
import type { ModelEntry } from "../client/scheduler-client.js";
import type { CliContext } from "../context.js";
import { formatBytes, formatTable } from "../output/table.js";
import { withClientOptions } from "./client-options.js";

/** The `corral models` table. */
export function formatModelsTable(models: readonly ModelEntry[]): string {
  if (models.length === 0) return "no models (add .gguf files to the scheduler's CORRAL_MODELS_DIR)";
  const rows = models.map((m) => [
    m.id,
    m.file ?? "-",
    formatBytes(m.file_size_bytes),
    m.architecture ?? "-",
    m.context_size === undefined ? "-" : String(m.context_size),
    m.sequences === undefined ? "-" : String(m.sequences),
    formatBytes(m.requirement_bytes),
    m.has_chat_template === undefined ? "-" : m.has_chat_template ? "yes" : "no",
  ]);
  return formatTable(["ID", "FILE", "SIZE", "ARCH", "CONTEXT", "SEQ", "NEEDS", "CHAT"], rows);
}

/** `corral models`: the model catalog. */
export function modelsCommand(ctx: CliContext): Command {
  const command = new Command("models")
    .description("list the models the scheduler serves (GET /v1/models)")
    .option("--json", "print the models as JSON");
  const client = withClientOptions(command, ctx);
  command.action(async (opts: { json?: boolean }) => {
    const models = await client().listModels();
    ctx.io.out(opts.json ? JSON.stringify(models, null, 2) : formatModelsTable(models));
  });
  return command;
}
