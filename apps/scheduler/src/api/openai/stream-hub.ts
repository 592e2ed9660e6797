import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { duplicateRedis } from "@corral/shared";

/** XREAD's reply: per stream key, its entries as [id, fields]. */
export type XReadReply = [key: string, entries: [id: string, fields: string[]][]][];

/** Where a {@link TokenRelay} reads its jobs' token streams from. */
export interface StreamReader {
  /**
   * The entries of `keys` after `ids` (XREAD's semantics), as soon as there are any, or
   * null after `blockMs` without any (or once closed). Rejects when Redis fails.
   */
  read(keys: readonly string[], ids: readonly string[], blockMs: number): Promise<XReadReply | null>;
  /** Ends a pending read (it resolves null) and releases what the reader holds. Idempotent. */
  close(): void;
}

/** Most entries one XREAD returns per stream. */
export const XREAD_COUNT = 1000;
/** How often a stream added during a block tries to cut it short (2 ms apart). */
const UNBLOCK_TRIES = 5;

export interface StreamHubOptions {
  /** The scheduler's command connection (not owned): CLIENT UNBLOCK goes through it. */
  redis: Redis;
  logger: Logger;
  /**
   * Longest single XREAD BLOCK of the shared connection. A stream added meanwhile cuts it
   * short with CLIENT UNBLOCK; this bounds the wait where that cannot reach it (just after
   * a reconnect). @defaultValue 1000
   */
  blockMs?: number;
  /** @defaultValue "corral-sse" */
  connectionName?: string;
}

/** One subscriber's stream in the hub: where the hub reads from, and what it read for it. */
interface Tail {
  reader: HubReader;
  lastId: string;
}

/**
 * Every streaming request's token streams, read over **one** Redis connection: a loop
 * runs one blocking XREAD over all the streams that readers wait on and hands each
 * reader its entries. A reader that starts waiting on a new stream while the loop is
 * blocked cuts the block short with CLIENT UNBLOCK, so its first entries are not
 * delayed. Without it each stream held a connection of its own for its XREAD BLOCKs, and
 * a few hundred concurrent streams ran into Redis's and the process's connection limits.
 */
export class StreamHub {
  readonly #o: Required<StreamHubOptions>;
  readonly #connection: Redis;
  readonly #tails = new Map<string, Tail>();
  #clientId: number | null = null;
  #blocked = false;
  /** A stream was added while the XREAD in flight was already sent without it. */
  #stale = false;
  #wake: (() => void) | null = null;
  #loop: Promise<void> | null = null;
  #closed = false;

  constructor(options: StreamHubOptions) {
    this.#o = { blockMs: 1000, connectionName: "corral-sse", ...options };
    this.#connection = duplicateRedis(options.redis, {
      connectionName: this.#o.connectionName,
      maxRetriesPerRequest: null,
      // XREAD BLOCK waits on purpose; the request connection's timeout would cut it.
      commandTimeout: undefined,
    });
    this.#connection.on("error", (error: Error) => this.#o.logger.debug({ err: error }, "stream hub connection error"));
    // A reconnected connection has a new client id: read it again before the next block.
    this.#connection.on("ready", () => (this.#clientId = null));
  }

  /** A reader for one request's streams. Close it when done. */
  reader(): StreamReader {
    return new HubReader(this);
  }

  /** How many streams are read now. */
  get streams(): number {
    return this.#tails.size;
  }

  /** Stops the loop, ends every pending read, and disconnects. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const tail of this.#tails.values()) tail.reader.close();
    this.#tails.clear();
    this.#wake?.();
    this.#connection.disconnect();
    await this.#loop;
  }

  /**
   * @internal Starts reading `key` from after `id` for `reader`, unless it is read already.
   * One reader per stream: each job belongs to one request.
   */
  watch(reader: HubReader, key: string, id: string): void {
    if (this.#closed || this.#tails.has(key)) return;
    this.#tails.set(key, { reader, lastId: id });
    this.#loop ??= this.#run();
    if (this.#wake) this.#wake();
    else if (this.#blocked) {
      this.#stale = true;
      this.#unblock(UNBLOCK_TRIES);
    }
  }

  /** @internal Stops reading `key`. An XREAD in flight may still return it; that is dropped. */
  unwatch(key: string): void {
    this.#tails.delete(key);
  }

  /** @internal Whether the hub is shut. */
  get closed(): boolean {
    return this.#closed;
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      if (this.#tails.size === 0) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = null;
        continue;
      }
      let reply: XReadReply | null;
      try {
        this.#clientId ??= Number(await this.#connection.client("ID"));
        // No await from here to the XREAD: a stream added later finds it blocked.
        const keys = [...this.#tails.keys()];
        if (keys.length === 0) continue;
        const ids = keys.map((key) => this.#tails.get(key)!.lastId);
        this.#stale = false;
        this.#blocked = true;
        reply = (await this.#connection.xread(
          "COUNT",
          XREAD_COUNT,
          "BLOCK",
          this.#o.blockMs,
          "STREAMS",
          ...keys,
          ...ids,
        )) as XReadReply | null;
      } catch (error) {
        if (this.#closed) return;
        // Each waiting reader gets the error (its request answers with it); new ones retry.
        for (const reader of new Set([...this.#tails.values()].map((tail) => tail.reader))) reader.fail(error);
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      } finally {
        this.#blocked = false;
      }
      for (const [key, entries] of reply ?? []) {
        const tail = this.#tails.get(key);
        if (!tail || entries.length === 0) continue;
        tail.lastId = entries.at(-1)![0];
        tail.reader.push(key, entries);
      }
    }
  }

  /**
   * Ends the shared connection's XREAD BLOCK now (it returns as if it timed out). The
   * XREAD goes out on another connection than the UNBLOCK, so it may not have reached
   * Redis yet: while it is still in flight without the new stream, try again shortly.
   */
  #unblock(tries: number): void {
    if (this.#clientId === null) return;
    this.#o.redis.client("UNBLOCK", this.#clientId).then(
      (unblocked) => {
        if (unblocked === 0 && tries > 1 && this.#blocked && this.#stale)
          setTimeout(() => this.#blocked && this.#stale && this.#unblock(tries - 1), 2).unref();
      },
      (error: unknown) => this.#o.logger.debug({ err: error }, "could not unblock the stream hub's read"),
    );
  }
}

/** One request's view of the hub: its streams' entries, buffered until it reads them. */
class HubReader implements StreamReader {
  readonly #hub: StreamHub;
  readonly #buffered = new Map<string, [string, string[]][]>();
  readonly #keys = new Set<string>();
  #waiter: { resolve: (reply: XReadReply | null) => void; reject: (error: unknown) => void } | null = null;
  #closed = false;

  constructor(hub: StreamHub) {
    this.#hub = hub;
  }

  async read(keys: readonly string[], ids: readonly string[], blockMs: number): Promise<XReadReply | null> {
    if (this.#closed) return null;
    if (this.#hub.closed) {
      // The scheduler is shutting down: block as a read would, rather than spin.
      await new Promise((resolve) => setTimeout(resolve, blockMs).unref());
      return null;
    }
    if (this.#waiter) throw new Error("one read at a time");
    // Streams no longer asked for are not read any more.
    const wanted = new Set(keys);
    for (const key of this.#keys) {
      if (wanted.has(key)) continue;
      this.#keys.delete(key);
      this.#buffered.delete(key);
      this.#hub.unwatch(key);
    }
    keys.forEach((key, i) => {
      if (this.#keys.has(key)) return;
      this.#keys.add(key);
      this.#hub.watch(this, key, ids[i] ?? "0-0");
    });
    const ready = this.#take();
    if (ready) return ready;
    return new Promise<XReadReply | null>((resolve, reject) => {
      const timer = setTimeout(() => settle(null), blockMs);
      const settle = (reply: XReadReply | null, error?: unknown) => {
        clearTimeout(timer);
        this.#waiter = null;
        if (error === undefined) resolve(reply);
        else reject(error);
      };
      this.#waiter = { resolve: (reply) => settle(reply), reject: (error) => settle(null, error) };
    });
  }

  /** @internal Entries the hub read for `key`. */
  push(key: string, entries: [string, string[]][]): void {
    if (this.#closed || !this.#keys.has(key)) return;
    const list = this.#buffered.get(key);
    if (list) list.push(...entries);
    else this.#buffered.set(key, [...entries]);
    if (this.#waiter) this.#waiter.resolve(this.#take());
  }

  /** @internal The shared read failed. */
  fail(error: unknown): void {
    this.#waiter?.reject(error);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const key of this.#keys) this.#hub.unwatch(key);
    this.#keys.clear();
    this.#buffered.clear();
    this.#waiter?.resolve(null);
  }

  /** What is buffered, as an XREAD reply, or null when nothing is. */
  #take(): XReadReply | null {
    if (this.#buffered.size === 0) return null;
    const reply: XReadReply = [...this.#buffered.entries()];
    this.#buffered.clear();
    return reply;
  }
}
