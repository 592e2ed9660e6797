import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { pino } from "pino";
import { RedisKeys, decodeTokenEntry } from "@corral/shared";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { TokenStreamWriter } from "./token-stream-writer.js";

describe("TokenStreamWriter on real Redis", () => {
  let url: string;
  let prefix: string;
  let redis: Redis;
  let keys: RedisKeys;

  before(async () => {
    url = (await testRedis()).url;
    prefix = uniquePrefix("writer");
    keys = new RedisKeys(prefix);
    redis = new Redis(url, { maxRetriesPerRequest: 1 });
  });

  after(async () => {
    redis?.disconnect();
    await cleanupPrefix(url, prefix);
  });

  const writer = (key: string) =>
    new TokenStreamWriter({ redis, key, ttlSeconds: 60, logger: pino({ level: "silent" }) });

  test("every entry carries the writer's run; a second run of the job (a rerun) has another", async () => {
    const key = keys.tokens("job_writer1");
    const first = writer(key);
    first.push("Once");
    first.push(" upon");
    await first.flush();
    const rerun = writer(key);
    rerun.push("Once upon a time");
    await rerun.end({
      finish_reason: "length",
      usage: { prompt_tokens: 1, completion_tokens: 4 },
      status: "succeeded",
    });
    const entries = (await redis.xrange(key, "-", "+")).map(([, fields]) => decodeTokenEntry(fields));
    assert.notEqual(first.run, rerun.run);
    assert.match(first.run, /^[\w-]{8}$/);
    const runs = entries.map((entry) => entry.run);
    const text = (run: string) =>
      entries
        .filter((entry) => entry.run === run && entry.type === "text")
        .map((entry) => (entry.type === "text" ? entry.text : ""))
        .join("");
    assert.equal(text(first.run), "Once upon");
    assert.equal(text(rerun.run), "Once upon a time");
    assert.equal(runs.at(-1), rerun.run);
    assert.equal(entries.at(-1)?.type, "end");
    assert.ok(runs.every((run) => run === first.run || run === rerun.run));
    assert.ok((await redis.ttl(key)) > 0);
  });

  test("logprobs travel with their text: chunks joined while a write is in flight keep theirs, in order", async () => {
    const key = keys.tokens("job_writer2");
    const w = writer(key);
    const lp = (token: string, logprob: number) => ({
      token,
      bytes: [...Buffer.from(token)],
      logprob,
      top_logprobs: [],
    });
    w.push("Once", [lp("Once", -0.5)]);
    w.push(" upon", [lp(" up", -1), lp("on", -0.25)]);
    w.push(" a", [lp(" a", -0.125)]);
    await w.end({ finish_reason: "stop", usage: { prompt_tokens: 1, completion_tokens: 4 }, status: "succeeded" });
    const entries = (await redis.xrange(key, "-", "+")).map(([, fields]) => decodeTokenEntry(fields));
    const texts = entries.filter((entry) => entry.type === "text");
    assert.ok(texts.length >= 1 && texts.length < 3, "chunks pushed during a write are joined");
    for (const entry of texts) {
      if (entry.type !== "text") continue;
      assert.equal(entry.logprobs?.map((t) => t.token).join(""), entry.text, "each entry's tokens spell its text");
    }
    const all = texts.flatMap((entry) => (entry.type === "text" ? (entry.logprobs ?? []) : []));
    assert.deepEqual(
      all.map((t) => t.logprob),
      [-0.5, -1, -0.25, -0.125],
    );
    const plain = writer(keys.tokens("job_writer3"));
    plain.push("no logprobs");
    await plain.flush();
    const [plainEntry] = await redis.xrange(keys.tokens("job_writer3"), "-", "+");
    assert.ok(plainEntry);
    const decoded = decodeTokenEntry(plainEntry[1]);
    assert.equal(decoded.type, "text");
    assert.equal("logprobs" in decoded, false);
  });

  test("a reasoning model's thoughts go in rt entries, in order with the text, never joined with it", async () => {
    const key = keys.tokens("job_writer_reasoning");
    const w = writer(key);
    w.pushReasoning("Let me");
    w.pushReasoning(" think.");
    w.push("Once");
    w.push(" upon");
    w.pushReasoning(" Again?");
    w.push(" a time");
    await w.end({
      finish_reason: "stop",
      usage: { prompt_tokens: 1, completion_tokens: 6, reasoning_tokens: 3 },
      status: "succeeded",
    });
    const entries = (await redis.xrange(key, "-", "+")).map(([, fields]) => decodeTokenEntry(fields));
    const runs: string[] = [];
    for (const entry of entries) {
      if (entry.type === "end") continue;
      const last = runs.at(-1);
      if (last?.startsWith(`${entry.type}:`)) runs[runs.length - 1] = `${last}${entry.text}`;
      else runs.push(`${entry.type}:${entry.text}`);
    }
    assert.deepEqual(runs, ["reasoning:Let me think.", "text:Once upon", "reasoning: Again?", "text: a time"]);
    const end = entries.at(-1);
    assert.equal(end?.type === "end" ? end.usage.reasoning_tokens : null, 3);
  });
});
