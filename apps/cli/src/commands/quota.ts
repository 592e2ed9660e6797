import { Command } from "commander";
import type { QuotaObject } from "@corral/scheduler";
import type { CliContext } from "../context.js";
import { formatAge } from "../output/table.js";
import { withClientOptions } from "./client-options.js";

const count = (n: number) => n.toLocaleString("en-US");

/** `corral quota`: one line per limit, with where the tenant stands. */
export function formatQuota(quota: QuotaObject, now: number): string {
  const { active_jobs: active, daily_tokens: tokens, fair_share: fair } = quota;
  const resets = `resets in ${formatAge(Math.max(0, tokens.resets_at * 1000 - now))} (00:00 UTC)`;
  const lines: [string, string][] = [
    ["tenant", quota.tenant],
    ["queued jobs", `at most ${count(quota.queued_jobs.limit)}`],
    ["running jobs", active.limit === null ? "no limit" : `${count(active.running ?? 0)} of ${count(active.limit)}`],
    [
      "tokens today",
      tokens.limit === null
        ? `${count(tokens.used)} (no daily budget)`
        : `${count(tokens.used)} of ${count(tokens.limit)} (${((100 * tokens.used) / tokens.limit).toFixed(1)}%), ${resets}`,
    ],
    ...(quota.daily_audio_seconds
      ? ([
          [
            "audio today",
            quota.daily_audio_seconds.limit === null
              ? `${count(quota.daily_audio_seconds.used)} s (no daily budget)`
              : `${count(quota.daily_audio_seconds.used)} of ${count(quota.daily_audio_seconds.limit)} s`,
          ],
        ] as [string, string][])
      : []),
    [
      "fair share",
      `share ${fair.share}, ${fair.counter === null ? "nothing served yet" : `counter ${count(Math.round(fair.counter))} (weighted tokens served; lower goes first)`}`,
    ],
  ];
  const width = Math.max(...lines.map(([name]) => name.length));
  return lines.map(([name, value]) => `${name.padEnd(width)}  ${value}`).join("\n");
}

/** `corral quota`: the caller's tenant's limits and usage. */
export function quotaCommand(ctx: CliContext): Command {
  const command = new Command("quota")
    .description(
      "show your tenant's limits and usage: queued and running jobs, tokens and audio seconds today, fair share (GET /v1/quota)",
    )
    .option("--json", "print the quota as JSON");
  const client = withClientOptions(command, ctx);
  command.action(async (opts: { json?: boolean }) => {
    const quota = await client().quota();
    ctx.io.out(opts.json ? JSON.stringify(quota, null, 2) : formatQuota(quota, Date.now()));
  });
  return command;
}
