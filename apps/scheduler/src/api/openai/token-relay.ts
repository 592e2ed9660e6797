import type { Logger } from "pino";
import {
  decodeTokenEntry,
  isFinalStatus,
  type JobRecord,
  type RedisKeys,
  type TokenLogprob,
  type TokenStreamEnd,
} from "@corral/shared";
import type { StreamReader, XReadReply } from "./stream-hub.js";

/** What the relay reports, per job (`index` is the job's position in the list it was given). */
export type RelayEvent =
  /**
   * `logprobs`: the tokens of this text, for jobs with logprobs; absent when the text is the
   * rest of a rerun's text or was read from the record (whose logprobs are not split).
   */
  | { type: "text"; index: number; text: string; logprobs?: TokenLogprob[] }
  /** A chunk of a reasoning model's thoughts (not part of the text). */
  | { type: "reasoning"; index: number; text: string }
  | { type: "end"; index: number; end: TokenStreamEnd }
  /**
   * The job was rerun (its worker was lost) and the rerun's text does not continue the
   * text already relayed (sampling differed): nothing more of this job is relayed.
   */
  | { type: "diverged"; index: number }
  /** The deadline passed before every job ended. */
  | { type: "timeout" };

export interface TokenRelayOptions {
  /**
   * Where the streams are read (a {@link StreamHub}'s reader, or a connection of its own).
   * The relay owns it and closes it when done, on abort, or on `close()`.
   */
  reader: StreamReader;
  keys: RedisKeys;
  /** Job ids, in choice order. */
  ids: readonly string[];
  /** Reads a job's record (to notice jobs that end without an end entry). */
  readRecord: (id: string) => Promise<JobRecord | null>;
  logger: Logger;
  /**
   * Longest single XREAD BLOCK; also how often records are checked.
   * @defaultValue 1000
   */
  blockMs?: number;
  /**
   * How long a job's record may be final before its stream's end entry must have come
   * (the worker writes the record first, then the end entry); after that the end is
   * taken from the record.
   * @defaultValue 500
   */
  settleMs?: number;
  /** @defaultValue Date.now */
  clock?: () => number;
}

const NO_USAGE = { prompt_tokens: 0, completion_tokens: 0 };

/**
 * Relays the per-job token streams (`keys.tokens(id)`) that workers append to, for one
 * streaming request: one blocking read over every job's stream at once, from id 0 so
 * nothing written before the relay started is missed. Text entries become `text` events
 * as they arrive, each stream's end entry an `end` event.
 *
 * A job rerun after its worker was lost writes its text again, from the start, as a new
 * run (entries carry the run's id). The relay holds a rerun's text back until it has
 * caught up with what was already relayed, then relays only what is new; a rerun whose
 * text differs ends that job with a `diverged` event, and late entries of the run that
 * was cut off are skipped. A reasoning model's thoughts (`reasoning` events) are a
 * second text, caught up with and compared on their own the same way.
 *
 * A job can also end with no end entry: cancelled while it waited, failed while loading
 * its model, or its stream expired. So the relay also checks the records of the jobs not
 * yet ended every `blockMs`; a record that stays final for `settleMs` without an end
 * entry ends the job from the record (the rest of its text from `result.text`).
 */
export class TokenRelay {
  readonly #o: Required<Omit<TokenRelayOptions, "clock">> & { clock: () => number };
  #closed = false;

  constructor(options: TokenRelayOptions) {
    this.#o = { blockMs: 1000, settleMs: 500, clock: Date.now, ...options };
  }

  /**
   * The events until every job ended, the deadline passed (a `timeout` event, last), or
   * `signal` aborted (no further events). Throws when Redis fails. The reader is closed
   * whichever way the iteration ends.
   */
  async *events(deadline: number, signal?: AbortSignal): AsyncGenerator<RelayEvent> {
    const { reader, keys, ids, logger, clock } = this.#o;
    const onAbort = () => this.close();
    signal?.addEventListener("abort", onAbort, { once: true });
    const state = ids.map((id) => ({
      id,
      key: keys.tokens(id),
      lastId: "0-0",
      /** Text and thoughts relayed to the client. */
      relayed: "",
      relayedReasoning: "",
      /** The run whose entries are relayed now, every run seen, and what the current run wrote. */
      run: null as string | null,
      runs: new Set<string>(),
      runText: "",
      runReasoning: "",
      ended: false,
      finalSince: null as number | null,
    }));
    const byKey = new Map(state.map((s, index) => [s.key, index]));
    let checkedAt = clock();
    try {
      for (;;) {
        const open = state.filter((s) => !s.ended);
        if (open.length === 0 || signal?.aborted || this.#closed) return;
        const left = deadline - clock();
        if (left <= 0) {
          yield { type: "timeout" };
          return;
        }
        const block = Math.max(1, Math.min(this.#o.blockMs, Math.ceil(left)));
        let reply: XReadReply | null;
        try {
          reply = await reader.read(
            open.map((s) => s.key),
            open.map((s) => s.lastId),
            block,
          );
        } catch (error) {
          if (signal?.aborted || this.#closed) return;
          throw error;
        }
        for (const [key, entries] of reply ?? []) {
          const index = byKey.get(key);
          if (index === undefined) continue;
          const s = state[index]!;
          for (const [entryId, fields] of entries) {
            s.lastId = entryId;
            if (s.ended) continue;
            let entry: ReturnType<typeof decodeTokenEntry>;
            try {
              entry = decodeTokenEntry(fields);
            } catch (error) {
              logger.warn({ err: error, job_id: s.id }, "skipping a malformed token stream entry");
              continue;
            }
            if (entry.run !== s.run) {
              // A superseded run still writing (a worker that lost the job but lives on).
              if (s.runs.has(entry.run)) continue;
              s.runs.add(entry.run);
              s.run = entry.run;
              s.runText = "";
              s.runReasoning = "";
            }
            const rerun = s.runs.size > 1;
            if (entry.type === "reasoning") {
              if (entry.text === "") continue;
              let fresh: string | null = entry.text;
              if (rerun) {
                s.runReasoning += entry.text;
                fresh = continuation(s.relayedReasoning, s.runReasoning);
              }
              if (fresh === null) {
                s.ended = true;
                yield { type: "diverged", index };
              } else if (fresh !== "") {
                s.relayedReasoning += fresh;
                yield { type: "reasoning", index, text: fresh };
              }
            } else if (entry.type === "text") {
              if (entry.text === "") continue;
              let fresh: string | null = entry.text;
              if (rerun) {
                s.runText += entry.text;
                fresh = continuation(s.relayed, s.runText);
              }
              if (fresh === null) {
                s.ended = true;
                yield { type: "diverged", index };
              } else if (fresh !== "") {
                s.relayed += fresh;
                const logprobs = fresh === entry.text ? entry.logprobs : undefined;
                yield { type: "text", index, text: fresh, ...(logprobs ? { logprobs } : {}) };
              }
            } else {
              s.ended = true;
              const { type: _type, run: _run, ...end } = entry;
              // A rerun that succeeded with less text than was relayed did not repeat it.
              const shorter = s.runText.length < s.relayed.length || s.runReasoning.length < s.relayedReasoning.length;
              if (rerun && end.status === "succeeded" && shorter) {
                yield { type: "diverged", index };
              } else {
                yield { type: "end", index, end };
              }
            }
          }
        }
        const now = clock();
        if (reply === null || now - checkedAt >= this.#o.blockMs) {
          checkedAt = now;
          for (const [index, s] of state.entries()) {
            if (s.ended) continue;
            const record = await this.#o.readRecord(s.id);
            if (record !== null && !isFinalStatus(record.status)) {
              s.finalSince = null;
              continue;
            }
            s.finalSince ??= now;
            if (record !== null && now - s.finalSince < this.#o.settleMs) continue;
            // Final (or gone) without an end entry: end it from the record.
            s.ended = true;
            const reasoning = record?.result?.reasoning ?? "";
            if (reasoning.length > s.relayedReasoning.length && reasoning.startsWith(s.relayedReasoning)) {
              const rest = reasoning.slice(s.relayedReasoning.length);
              s.relayedReasoning = reasoning;
              yield { type: "reasoning", index, text: rest };
            }
            const text = record?.result?.text ?? "";
            if (text.length > s.relayed.length && text.startsWith(s.relayed)) {
              const rest = text.slice(s.relayed.length);
              s.relayed = text;
              yield { type: "text", index, text: rest };
            }
            yield { type: "end", index, end: endFromRecord(record) };
          }
        }
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.close();
    }
  }

  /** Closes the reader (ending a pending read). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#o.reader.close();
  }
}

/**
 * What a rerun's text adds to the text already relayed: "" while it is still catching up
 * (a prefix of it), the new part once past it, null when it differs.
 */
function continuation(relayed: string, runText: string): string | null {
  if (runText.length <= relayed.length) return relayed.startsWith(runText) ? "" : null;
  return runText.startsWith(relayed) ? runText.slice(relayed.length) : null;
}

/** A stream end read from a final record (or a vanished one, which counts as failed). */
function endFromRecord(record: JobRecord | null): TokenStreamEnd {
  const status = record && isFinalStatus(record.status) ? (record.status as TokenStreamEnd["status"]) : "failed";
  return {
    status,
    finish_reason: record?.result?.finish_reason ?? "stop",
    usage: record?.result?.usage ?? NO_USAGE,
  };
}
