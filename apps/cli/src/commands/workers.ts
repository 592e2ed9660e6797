import { Command } from "commander";
import type { WorkerState } from "@corral/shared";
import type { CliContext } from "../context.js";
import { formatAge, formatBytes, formatTable } from "../output/table.js";
import { withClientOptions } from "./client-options.js";

/** The `corral workers` table. */
export function formatWorkersTable(workers: readonly WorkerState[], now: number): string {
  if (workers.length === 0) return "no workers online (start one with `corral worker` or `corral up`)";
  const rows = workers.map((w) => [
    w.id,
    w.host,
    w.mode,
    w.state,
    w.mode === "cpu" || (w.gpus ?? []).length === 0 ? "-" : w.gpus.map((g) => String(g.index)).join(","),
    `${formatBytes(w.budget_free_bytes)} / ${formatBytes(w.budget_total_bytes)}`,
    (w.loaded_models ?? []).map((m) => `${m.model} (${m.busy_sequences}/${m.sequences})`).join(", ") || "-",
    String((w.active_jobs ?? []).length),
    `${formatAge(now - w.updated_at)} ago`,
  ]);
  return formatTable(
    ["ID", "HOST", "MODE", "STATE", "GPUS", "FREE / TOTAL", "LOADED MODELS", "ACTIVE", "HEARTBEAT"],
    rows,
  );
}

/** `corral workers`: the scheduler's view of the worker slots. */
export function workersCommand(ctx: CliContext): Command {
  const command = new Command("workers")
    .description("list the workers the scheduler sees (GET /v1/workers)")
    .option("--json", "print the workers as JSON");
  const client = withClientOptions(command, ctx);
  command.action(async (opts: { json?: boolean }) => {
    const workers = await client().listWorkers();
    ctx.io.out(opts.json ? JSON.stringify(workers, null, 2) : formatWorkersTable(workers, Date.now()));
  });
  return command;
}
