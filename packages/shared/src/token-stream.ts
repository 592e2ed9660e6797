import { z } from "zod";
import { FinishReason, TokenLogprob, Usage } from "./schemas/job-record.js";

/**
 * The per-job token stream (`RedisKeys.tokens(id)`), a capped Redis stream with a TTL.
 * The worker appends one entry per text chunk, then one final entry; the scheduler
 * relays entries as server-sent events. Entry fields are flat string pairs:
 * - chunk: `t` = text, and for jobs with `logprobs` `lp` = JSON of the TokenLogprob[] of
 *   the tokens that text came from (tokens whose text is held back, such as a stop string
 *   being matched, go with the chunk that releases it)
 * - reasoning chunk (reasoning models): `rt` = text of the model's thoughts (a thought
 *   segment), which is not part of the answer's text; entries keep generation order
 * - final: `done` = "1", `finish_reason`, `usage` (JSON of Usage), `status` (job status)
 * - both: `r` = the run that wrote it, a short id each run of the job picks. A job rerun
 *   after its worker was lost appends a second run's entries to the same stream; the
 *   reader tells them apart by `r` (entries without one, from older workers, are run "").
 */
export const TOKEN_STREAM_MAXLEN = 10_000;
export const TOKEN_STREAM_TTL_SECONDS = 3600;

export const TokenStreamEnd = z.object({
  finish_reason: FinishReason,
  usage: Usage,
  status: z.enum(["succeeded", "failed", "cancelled"]),
});
export type TokenStreamEnd = z.infer<typeof TokenStreamEnd>;

export type TokenStreamEntry = { run: string } & (
  | { type: "text"; text: string; logprobs?: TokenLogprob[] }
  | { type: "reasoning"; text: string }
  | ({ type: "end" } & TokenStreamEnd)
);

const runField = (run: string): string[] => (run === "" ? [] : ["r", run]);

export const encodeTextEntry = (text: string, run = "", logprobs?: readonly TokenLogprob[]): string[] => [
  "t",
  text,
  ...(logprobs ? ["lp", JSON.stringify(logprobs)] : []),
  ...runField(run),
];

export const encodeReasoningEntry = (text: string, run = ""): string[] => ["rt", text, ...runField(run)];

export const encodeEndEntry = (end: TokenStreamEnd, run = ""): string[] => [
  "done",
  "1",
  "finish_reason",
  end.finish_reason,
  "usage",
  JSON.stringify(end.usage),
  "status",
  end.status,
  ...runField(run),
];

/** Decodes one entry's flat field list (as ioredis returns it from XREAD/XRANGE). */
export function decodeTokenEntry(fields: readonly string[]): TokenStreamEntry {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i]!, fields[i + 1]!);
  const run = map.get("r") ?? "";
  if (map.get("done") === "1") {
    return {
      type: "end",
      run,
      ...TokenStreamEnd.parse({
        finish_reason: map.get("finish_reason"),
        usage: JSON.parse(map.get("usage") ?? "null"),
        status: map.get("status"),
      }),
    };
  }
  const reasoning = map.get("rt");
  if (reasoning !== undefined) return { type: "reasoning", run, text: reasoning };
  const lp = map.get("lp");
  return {
    type: "text",
    run,
    text: map.get("t") ?? "",
    ...(lp !== undefined ? { logprobs: z.array(TokenLogprob).parse(JSON.parse(lp)) } : {}),
  };
}
