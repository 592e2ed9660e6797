import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { encodeEndEntry, encodeTextEntry, type TokenStreamEnd } from "@corral/shared";
import { API_KEY, STORIES, startStack, type OpenAIStack } from "./harness.js";

/** What this test reads of a completion stream's events. */
interface SseEvent {
  choices?: { text?: string }[];
  error?: { code?: string };
}

const END: TokenStreamEnd = {
  finish_reason: "length",
  usage: { prompt_tokens: 2, completion_tokens: 4 },
  status: "succeeded",
};

/**
 * A worker lost mid-stream: its job is rerun and the rerun writes its text to the same
 * token stream again, as a new run. No worker runs here; the test writes both runs'
 * entries itself, as two workers would.
 */
describe("a streamed job rerun after its worker was lost, on a real scheduler and Redis", () => {
  let stack: OpenAIStack;

  before(async () => {
    // A stream the relay fails to end runs into this limit instead of hanging the test.
    stack = await startStack({ worker: false, env: { CORRAL_REQUEST_TIMEOUT_MS: "20000" } });
  });

  after(async () => {
    await stack?.close();
  });

  /** Starts a streaming completion; resolves its job id once queued, and the whole SSE body once it ends. */
  const startStream = async () => {
    const known = new Set(await stack.redis.zrange(stack.keys.tenantJobs("lab"), 0, -1));
    const body = fetch(`${stack.baseURL}/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ model: STORIES, prompt: "Once", max_tokens: 4, stream: true }),
    }).then((response) => response.text());
    body.catch(() => undefined);
    for (let i = 0; i < 500; i++) {
      const id = (await stack.redis.zrange(stack.keys.tenantJobs("lab"), 0, -1)).find((j) => !known.has(j));
      if (id) return { id, body };
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error("the streaming request queued no job");
  };

  const events = (sse: string) =>
    sse
      .split("\n")
      .filter((line) => line.startsWith("data: ") && line !== "data: [DONE]")
      .map((line) => JSON.parse(line.slice(6)) as SseEvent);
  const textOf = (sse: string) =>
    events(sse)
      .map((event) => event.choices?.[0]?.text ?? "")
      .join("");

  test("a rerun that writes the same text again: the client gets each part once", async () => {
    const { id, body } = await startStream();
    const key = stack.keys.tokens(id);
    await stack.redis.xadd(key, "*", ...encodeTextEntry(" upon", "first"));
    await stack.redis.xadd(key, "*", ...encodeTextEntry(" a", "first"));
    // The first worker is lost; the rerun starts over.
    await stack.redis.xadd(key, "*", ...encodeTextEntry(" upon a", "second"));
    await stack.redis.xadd(key, "*", ...encodeTextEntry(" time", "second"));
    // The lost worker, alive after all, writes once more: skipped.
    await stack.redis.xadd(key, "*", ...encodeTextEntry(" LATE", "first"));
    await stack.redis.xadd(key, "*", ...encodeTextEntry(" there", "second"));
    await stack.redis.xadd(key, "*", ...encodeEndEntry(END, "second"));
    const sse = await body;
    assert.equal(textOf(sse), " upon a time there");
    assert.ok(sse.trimEnd().endsWith("data: [DONE]"), sse);
    assert.ok(!events(sse).some((event) => event.error), sse);
    await fetch(`${stack.baseURL}/jobs/${id}`, { method: "DELETE", headers: { authorization: `Bearer ${API_KEY}` } });
  });

  test("a rerun whose text differs ends the stream with stream_interrupted and cancels the job", async () => {
    const { id, body } = await startStream();
    const key = stack.keys.tokens(id);
    await stack.redis.xadd(key, "*", ...encodeTextEntry(" upon a", "first"));
    await stack.redis.xadd(key, "*", ...encodeTextEntry(" there was", "second"));
    await stack.redis.xadd(key, "*", ...encodeTextEntry(" a dog", "second"));
    const sse = await body;
    assert.equal(textOf(sse), " upon a", "nothing of the differing rerun reached the client");
    const error = events(sse).find((event) => event.error)?.error;
    assert.equal(error?.code, "stream_interrupted", sse);
    assert.equal((await stack.waitForJob(id)).status, "cancelled");
  });
});
