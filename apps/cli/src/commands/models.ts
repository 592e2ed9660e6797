import { Command } from "commander";
import type { ModelEntry } from "../client/scheduler-client.js";
import type { CliContext } from "../context.js";
import { formatBytes, formatTable } from "../output/table.js";
import { withClientOptions } from "./client-options.js";

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
