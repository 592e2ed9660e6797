import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import {
  TOKEN_STREAM_MAXLEN,
  encodeEndEntry,
  encodeReasoningEntry,
  encodeTextEntry,
  type TokenLogprob,
  type TokenStreamEnd,
} from "@corral/shared";

/**
 * Appends one job's generated text to its Redis stream (`keys.tokens(id)`), capped with
 * `MAXLEN ~` and given a TTL on the first write. Chunks that arrive while a write is in
 * flight are joined into the next entry, so a fast generator costs few round trips and
 * never waits on Redis. The stream is best effort: a failed write is logged, never
 * fails the job (the result lives in the job record). Every entry carries this writer's
 * run id, so a reader can tell a rerun's entries from those of a run that was cut off.
 * A reasoning model's thoughts go in entries of their own (`rt`), in generation order
 * with the answer's text: chunks are joined only with chunks of the same kind.
 */
export class TokenStreamWriter {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #ttlSeconds: number;
  readonly #log: Logger;
  /** Chunks not written yet, consecutive chunks of a kind joined, in the order they came. */
  #pending: PendingEntry[] = [];
  #flushing: Promise<void> | null = null;
  #expirySet = false;
  #ended = false;
  /** This run's id in the stream (`r`). */
  readonly run: string;

  constructor(options: { redis: Redis; key: string; ttlSeconds: number; logger: Logger; run?: string }) {
    this.#redis = options.redis;
    this.#key = options.key;
    this.#ttlSeconds = options.ttlSeconds;
    this.#log = options.logger;
    this.run = options.run ?? randomBytes(6).toString("base64url");
  }

  /** Queues a chunk (with its tokens' logprobs, for jobs that asked for them); returns at once. */
  push(text: string, logprobs?: readonly TokenLogprob[]): void {
    this.#queue("text", text, logprobs);
  }

  /** Queues a chunk of a reasoning model's thoughts; returns at once. */
  pushReasoning(text: string): void {
    this.#queue("reasoning", text);
  }

  #queue(kind: PendingEntry["kind"], text: string, logprobs?: readonly TokenLogprob[]): void {
    if (this.#ended || text === "") return;
    const last = this.#pending.at(-1);
    if (last?.kind === kind) {
      last.text += text;
      if (logprobs) (last.logprobs ??= []).push(...logprobs);
    } else {
      this.#pending.push({ kind, text, logprobs: logprobs ? [...logprobs] : null });
    }
    this.#flushing ??= this.#flush();
  }

  /** Resolves once every chunk pushed so far is in the stream. */
  async flush(): Promise<void> {
    await this.#flushing;
    while (this.#pending.length > 0) await this.#write(this.#takeEntry());
  }

  /** Writes what is pending, then the final entry. Idempotent; later pushes are ignored. */
  async end(end: TokenStreamEnd): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    await this.flush();
    await this.#write(encodeEndEntry(end, this.run));
  }

  async #flush(): Promise<void> {
    try {
      while (this.#pending.length > 0 && !this.#ended) await this.#write(this.#takeEntry());
    } finally {
      this.#flushing = null;
    }
  }

  #takeEntry(): string[] {
    const entry = this.#pending.shift()!;
    return entry.kind === "reasoning"
      ? encodeReasoningEntry(entry.text, this.run)
      : encodeTextEntry(entry.text, this.run, entry.logprobs ?? undefined);
  }

  async #write(fields: string[]): Promise<void> {
    try {
      const pipeline = this.#redis.pipeline().xadd(this.#key, "MAXLEN", "~", TOKEN_STREAM_MAXLEN, "*", ...fields);
      if (!this.#expirySet) pipeline.expire(this.#key, this.#ttlSeconds);
      const replies = await pipeline.exec();
      const failed = replies?.find(([error]) => error);
      if (failed?.[0]) throw failed[0];
      this.#expirySet = true;
    } catch (error) {
      this.#log.warn({ err: error, key: this.#key }, "could not append to the token stream");
    }
  }
}

interface PendingEntry {
  kind: "text" | "reasoning";
  text: string;
  /** The logprobs of the text's tokens; null for jobs without logprobs (and for thoughts). */
  logprobs: TokenLogprob[] | null;
}
