import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { pino, type Logger } from "pino";
import {
  JobRecords,
  RedisKeys,
  encodeEndEntry,
  encodeReasoningEntry,
  encodeTextEntry,
  type JobRecord,
  type TokenStreamEnd,
} from "@corral/shared";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../../test/support/redis.js";
import { StreamHub, XREAD_COUNT, type StreamReader, type XReadReply } from "./stream-hub.js";
import { TokenRelay, type RelayEvent } from "./token-relay.js";

/** A reader on a connection of its own, one blocking XREAD per read: the relay against plain XREAD. */
class DedicatedStreamReader implements StreamReader {
  readonly #connection: Redis;
  #closed = false;

  /** Takes ownership of `connection` (disconnected on close). */
  constructor(connection: Redis, logger: Logger) {
    this.#connection = connection;
    // Failed reads surface as rejections of XREAD; the event only needs a listener.
    connection.on("error", (error: Error) => logger.debug({ err: error }, "stream reader connection error"));
  }

  async read(keys: readonly string[], ids: readonly string[], blockMs: number): Promise<XReadReply | null> {
    if (this.#closed) return null;
    try {
      return (await this.#connection.xread(
        "COUNT",
        XREAD_COUNT,
        "BLOCK",
        blockMs,
        "STREAMS",
        ...keys,
        ...ids,
      )) as XReadReply | null;
    } catch (error) {
      if (this.#closed) return null;
      throw error;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#connection.disconnect();
  }
}

const END: TokenStreamEnd = {
  finish_reason: "length",
  usage: { prompt_tokens: 3, completion_tokens: 2 },
  status: "succeeded",
};

const record = (id: string, patch: Partial<JobRecord> = {}): JobRecord => ({
  id,
  object: "job",
  tenant: "t",
  model: "m",
  source: "openai",
  status: "running",
  priority: 50,
  created_at: Date.now(),
  started_at: null,
  finished_at: null,
  attempts: 1,
  worker: null,
  gpu: null,
  result: null,
  error: null,
  ...patch,
});

for (const kind of ["a connection of its own", "the shared stream hub"] as const)
  describe(`TokenRelay on real Redis, reading through ${kind}`, () => {
    let url: string;
    let prefix: string;
    let keys: RedisKeys;
    let redis: Redis;
    let records: JobRecords;
    let hub: StreamHub | null = null;
    let counter = 0;

    before(async () => {
      url = (await testRedis()).url;
      prefix = uniquePrefix("relay");
      keys = new RedisKeys(prefix);
      redis = new Redis(url, { maxRetriesPerRequest: 1 });
      records = new JobRecords(redis, keys);
      if (kind === "the shared stream hub") hub = new StreamHub({ redis, logger: pino({ level: "silent" }) });
    });

    after(async () => {
      await hub?.close();
      redis?.disconnect();
      await cleanupPrefix(url, prefix);
    });

    const newId = () => `job_relay${++counter}`;

    const relayFor = (ids: string[], options: { blockMs?: number; settleMs?: number } = {}) => {
      const connection = hub ? null : redis.duplicate();
      const reader = hub?.reader() ?? new DedicatedStreamReader(connection!, pino({ level: "silent" }));
      /** Waits for what the reader held to be released: its connection closed, or its streams left the hub. */
      const released = async () => {
        if (connection) return disconnected(connection);
        const deadline = Date.now() + 2000;
        while (hub!.streams > 0) {
          if (Date.now() > deadline) assert.fail(`the hub still reads ${hub!.streams} streams`);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      };
      const relay = new TokenRelay({
        reader,
        keys,
        ids,
        readRecord: (id) => records.get(id),
        logger: pino({ level: "silent" }),
        blockMs: 100,
        settleMs: 100,
        ...options,
      });
      return { relay, released };
    };

    const collect = async (iterable: AsyncIterable<RelayEvent>): Promise<RelayEvent[]> => {
      const events: RelayEvent[] = [];
      for await (const event of iterable) events.push(event);
      return events;
    };

    test("relays entries written before it started and after, then the end; releases its connection", async () => {
      const id = newId();
      await records.create(record(id));
      await redis.xadd(keys.tokens(id), "*", ...encodeTextEntry("Once"));
      const { relay, released } = relayFor([id]);
      const events = collect(relay.events(Date.now() + 10_000));
      await new Promise((resolve) => setTimeout(resolve, 50));
      await redis.xadd(keys.tokens(id), "*", ...encodeTextEntry(" upon"));
      await redis.xadd(keys.tokens(id), "*", ...encodeEndEntry(END));
      assert.deepEqual(await events, [
        { type: "text", index: 0, text: "Once" },
        { type: "text", index: 0, text: " upon" },
        { type: "end", index: 0, end: END },
      ]);
      await released();
    });

    test("a rerun that succeeds with less text than was relayed ends the job as diverged", async () => {
      const id = newId();
      await records.create(record(id));
      await redis.xadd(keys.tokens(id), "*", ...encodeTextEntry("Once upon a time", "first"));
      await redis.xadd(keys.tokens(id), "*", ...encodeTextEntry("Once upon", "second"));
      await redis.xadd(keys.tokens(id), "*", ...encodeEndEntry(END, "second"));
      const events = await collect(relayFor([id]).relay.events(Date.now() + 10_000));
      assert.deepEqual(events, [
        { type: "text", index: 0, text: "Once upon a time" },
        { type: "diverged", index: 0 },
      ]);
    });

    test("a rerun that failed ends the job with its failure, not as diverged", async () => {
      const id = newId();
      await records.create(record(id));
      const failed: TokenStreamEnd = { ...END, status: "failed" };
      await redis.xadd(keys.tokens(id), "*", ...encodeTextEntry("Once upon", "first"));
      await redis.xadd(keys.tokens(id), "*", ...encodeTextEntry("Once", "second"));
      await redis.xadd(keys.tokens(id), "*", ...encodeEndEntry(failed, "second"));
      const events = await collect(relayFor([id]).relay.events(Date.now() + 10_000));
      assert.deepEqual(events, [
        { type: "text", index: 0, text: "Once upon" },
        { type: "end", index: 0, end: failed },
      ]);
    });

    test("a reasoning model's thoughts are relayed as reasoning events in stream order; a rerun catches up with both texts", async () => {
      const id = newId();
      await records.create(record(id));
      const end = { ...END, usage: { ...END.usage, reasoning_tokens: 2 } };
      await redis.xadd(keys.tokens(id), "*", ...encodeReasoningEntry("Let me", "first"));
      await redis.xadd(keys.tokens(id), "*", ...encodeReasoningEntry(" think", "first"));
      await redis.xadd(keys.tokens(id), "*", ...encodeTextEntry("Once", "first"));
      await redis.xadd(keys.tokens(id), "*", ...encodeReasoningEntry("Let me think", "second"));
      await redis.xadd(keys.tokens(id), "*", ...encodeTextEntry("Once upon", "second"));
      await redis.xadd(keys.tokens(id), "*", ...encodeEndEntry(end, "second"));
      const events = await collect(relayFor([id]).relay.events(Date.now() + 10_000));
      assert.deepEqual(events, [
        { type: "reasoning", index: 0, text: "Let me" },
        { type: "reasoning", index: 0, text: " think" },
        { type: "text", index: 0, text: "Once" },
        { type: "text", index: 0, text: " upon" },
        { type: "end", index: 0, end },
      ]);
    });

    test("a rerun whose thoughts differ from those relayed ends the job as diverged", async () => {
      const id = newId();
      await records.create(record(id));
      await redis.xadd(keys.tokens(id), "*", ...encodeReasoningEntry("Hmm", "first"));
      await redis.xadd(keys.tokens(id), "*", ...encodeReasoningEntry("Huh", "second"));
      await redis.xadd(keys.tokens(id), "*", ...encodeEndEntry(END, "second"));
      const events = await collect(relayFor([id]).relay.events(Date.now() + 10_000));
      assert.deepEqual(events, [
        { type: "reasoning", index: 0, text: "Hmm" },
        { type: "diverged", index: 0 },
      ]);
    });

    test("a job ended from its record gets the rest of its thoughts, then of its text", async () => {
      const id = newId();
      const usage = { prompt_tokens: 1, completion_tokens: 6, reasoning_tokens: 2 };
      await records.create(
        record(id, {
          status: "succeeded",
          result: {
            text: "Once upon a time",
            reasoning: "Let me think",
            finish_reason: "stop",
            usage,
            timings: { queue_ms: 0, load_ms: 0, ttft_ms: 1, generation_ms: 1 },
          },
        }),
      );
      await redis.xadd(keys.tokens(id), "*", ...encodeReasoningEntry("Let me"));
      const events = await collect(relayFor([id]).relay.events(Date.now() + 10_000));
      assert.deepEqual(events, [
        { type: "reasoning", index: 0, text: "Let me" },
        { type: "reasoning", index: 0, text: " think" },
        { type: "text", index: 0, text: "Once upon a time" },
        { type: "end", index: 0, end: { status: "succeeded", finish_reason: "stop", usage } },
      ]);
    });

    test("interleaves several jobs by index, each ending on its own", async () => {
      const [a, b] = [newId(), newId()];
      for (const id of [a, b]) await records.create(record(id));
      await redis.xadd(keys.tokens(b), "*", ...encodeTextEntry("B1"));
      await redis.xadd(keys.tokens(a), "*", ...encodeTextEntry("A1"));
      await redis.xadd(keys.tokens(b), "*", ...encodeEndEntry(END));
      await redis.xadd(keys.tokens(a), "*", ...encodeEndEntry({ ...END, finish_reason: "stop" }));
      const events = await collect(relayFor([a, b]).relay.events(Date.now() + 10_000));
      const texts = ["", ""];
      const ends: number[] = [];
      for (const event of events) {
        if (event.type === "text") texts[event.index] += event.text;
        if (event.type === "end") ends.push(event.index);
      }
      assert.deepEqual(texts, ["A1", "B1"]);
      assert.deepEqual(ends.sort(), [0, 1]);
    });

    test("a job whose record is final with no end entry is ended from its record, the rest of its text included", async () => {
      const id = newId();
      await records.create(
        record(id, {
          status: "succeeded",
          result: {
            text: "Once upon a time",
            finish_reason: "stop",
            usage: { prompt_tokens: 1, completion_tokens: 4 },
            timings: { queue_ms: 0, load_ms: 0, ttft_ms: 1, generation_ms: 1 },
          },
        }),
      );
      await redis.xadd(keys.tokens(id), "*", ...encodeTextEntry("Once upon"));
      const events = await collect(relayFor([id]).relay.events(Date.now() + 10_000));
      assert.deepEqual(events, [
        { type: "text", index: 0, text: "Once upon" },
        { type: "text", index: 0, text: " a time" },
        {
          type: "end",
          index: 0,
          end: { status: "succeeded", finish_reason: "stop", usage: { prompt_tokens: 1, completion_tokens: 4 } },
        },
      ]);
    });

    test("a job cancelled while queued (no stream at all) ends as cancelled", async () => {
      const id = newId();
      await records.create(record(id, { status: "cancelled" }));
      const events = await collect(relayFor([id]).relay.events(Date.now() + 10_000));
      assert.deepEqual(events, [
        {
          type: "end",
          index: 0,
          end: { status: "cancelled", finish_reason: "stop", usage: { prompt_tokens: 0, completion_tokens: 0 } },
        },
      ]);
    });

    test("the deadline ends the relay with a timeout event", async () => {
      const id = newId();
      await records.create(record(id, { status: "queued" }));
      const events = await collect(relayFor([id]).relay.events(Date.now() + 300));
      assert.deepEqual(events, [{ type: "timeout" }]);
    });

    test("aborting ends a blocked read at once and disconnects", async () => {
      const id = newId();
      await records.create(record(id, { status: "queued" }));
      const { relay, released } = relayFor([id], { blockMs: 60_000 });
      const controller = new AbortController();
      const events = collect(relay.events(Date.now() + 120_000, controller.signal));
      await new Promise((resolve) => setTimeout(resolve, 100));
      const abortedAt = Date.now();
      controller.abort();
      assert.deepEqual(await events, []);
      assert.ok(Date.now() - abortedAt < 30_000, "the 60 s XREAD BLOCK was cut short");
      await released();
    });
  });

/** Waits (up to 2 s) for the connection to be fully closed. */
async function disconnected(connection: Redis): Promise<void> {
  const deadline = Date.now() + 2000;
  while (connection.status !== "end") {
    if (Date.now() > deadline) assert.fail(`connection still ${connection.status}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
