import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { pino } from "pino";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../../test/support/redis.js";
import { StreamHub, type XReadReply } from "./stream-hub.js";

describe("StreamHub on real Redis", () => {
  let url: string;
  let redis: Redis;
  const prefix = uniquePrefix("stream-hub");
  const hubs: StreamHub[] = [];

  before(async () => {
    url = (await testRedis()).url;
    redis = new Redis(url, { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    for (const hub of hubs) await hub.close();
    redis?.disconnect();
    await cleanupPrefix(url, prefix);
  });

  let counter = 0;
  const key = () => `{${prefix}}:tokens:s${++counter}`;
  const newHub = (blockMs: number) => {
    const connectionName = `corral-sse-test-${++counter}`;
    const hub = new StreamHub({ redis, logger: pino({ level: "silent" }), blockMs, connectionName });
    hubs.push(hub);
    return { hub, connectionName };
  };
  const texts = (reply: XReadReply | null) =>
    Object.fromEntries((reply ?? []).map(([k, entries]) => [k, entries.map(([, fields]) => fields[1])]));

  test("twenty readers share one connection, and each gets its own streams' entries, from the start", async () => {
    const { hub, connectionName } = newHub(5000);
    const keys = Array.from({ length: 20 }, key);
    await redis.xadd(keys[0]!, "*", "t", "early");
    const readers = keys.map(() => hub.reader());
    const reads = readers.map((reader, i) => reader.read([keys[i]!], ["0-0"], 5000));
    for (const [i, k] of keys.entries()) if (i > 0) await redis.xadd(k, "*", "t", `text ${i}`);
    const replies = await Promise.all(reads);
    assert.deepEqual(texts(replies[0]!), { [keys[0]!]: ["early"] });
    for (let i = 1; i < keys.length; i++) assert.deepEqual(texts(replies[i]!), { [keys[i]!]: [`text ${i}`] });
    const clients = (await redis.client("LIST")) as string;
    assert.equal(clients.split("\n").filter((line) => line.includes(`name=${connectionName} `)).length, 1);
    for (const reader of readers) reader.close();
    assert.equal(hub.streams, 0);
  });

  test("a stream added while the shared read blocks is read at once (CLIENT UNBLOCK), not after the block", async () => {
    const { hub } = newHub(30_000);
    const first = hub.reader();
    const firstRead = first.read([key()], ["0-0"], 30_000);
    await new Promise((resolve) => setTimeout(resolve, 100)); // the hub is blocked on the first stream now
    const k = key();
    await redis.xadd(k, "*", "t", "now");
    const started = Date.now();
    const reply = await hub.reader().read([k], ["0-0"], 30_000);
    assert.deepEqual(texts(reply), { [k]: ["now"] });
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    first.close();
    assert.equal(await firstRead, null, "closing a reader ends its pending read");
  });

  test("entries are not lost between reads, and a read with fewer streams stops reading the others", async () => {
    const { hub } = newHub(5000);
    const [a, b] = [key(), key()];
    const reader = hub.reader();
    const firstRead = reader.read([a, b], ["0-0", "0-0"], 5000);
    await redis.xadd(a, "*", "t", "a1");
    await firstRead;
    // Written while the reader is not waiting: buffered for its next read.
    await redis.xadd(a, "*", "t", "a2");
    await redis.xadd(a, "*", "t", "a3");
    await new Promise((resolve) => setTimeout(resolve, 100));
    const next = texts(await reader.read([a], ["0-0"], 5000));
    assert.deepEqual(next, { [a]: ["a2", "a3"] });
    assert.equal(hub.streams, 1, "b is no longer read");
    assert.equal(await reader.read([a], ["0-0"], 100), null, "nothing new: null after the block");
    reader.close();
  });

  test("closing the hub ends every pending read", async () => {
    const { hub } = newHub(5000);
    const reads = [hub.reader(), hub.reader()].map((reader) => reader.read([key()], ["0-0"], 60_000));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await hub.close();
    assert.deepEqual(await Promise.all(reads), [null, null]);
  });
});
