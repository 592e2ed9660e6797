import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import {
  TOKEN_STREAM_MAXLEN,
  encodeEndEntry,
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
 */
export class TokenStreamWriter {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #ttlSeconds: number;
  readonly #log: Logger;
  #pending = "";
  /** The logprobs of the pending text's tokens; null for jobs without logprobs. */
  #pendingLogprobs: TokenLogprob[] | null = null;
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
    if (this.#ended || text === "") return;
    this.#pending += text;
    if (logprobs) (this.#pendingLogprobs ??= []).push(...logprobs);
    this.#flushing ??= this.#flush();
  }

  /** Resolves once every chunk pushed so far is in the stream. */
  async flush(): Promise<void> {
    await this.#flushing;
    if (this.#pending !== "") await this.#write(this.#takeEntry());
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
      while (this.#pending !== "" && !this.#ended) await this.#write(this.#takeEntry());
    } finally {
      this.#flushing = null;
    }
  }

  #takeEntry(): string[] {
    const text = this.#pending;
    const logprobs = this.#pendingLogprobs;
    this.#pending = "";
    if (logprobs) this.#pendingLogprobs = [];
    return encodeTextEntry(text, this.run, logprobs ?? undefined);
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
