import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { JobRecord } from "@corral/shared";
import type { ChatCompletion, ChatCompletionCreateParamsNonStreaming } from "openai/resources/chat/completions";
import { copyGgufWithChatTemplate } from "../support/gguf-writer.js";
import { repoRootDir, sharedModelsDir } from "../support/models.js";
import { API_KEY, STORIES, TINY_RANDOM, startStack, type OpenAIStack } from "./harness.js";

/** stories260K and llama-2-tiny-random under DeepSeek R1's real chat template. */
const STORIES_R1 = "stories260K-r1";
const RANDOM_R1 = "tiny-random-r1";
const STORY = [{ role: "user" as const, content: "Once upon a time" }];

/** What a reasoning reply adds to OpenAI's types (DeepSeek's fields). */
type Reasoned = { reasoning_content?: string };
const reasoningOf = (completion: ChatCompletion): string | undefined =>
  (completion.choices[0]!.message as Reasoned).reasoning_content;
const reasoningTokens = (usage: unknown): number | undefined =>
  (usage as { completion_tokens_details?: { reasoning_tokens?: number } } | undefined)?.completion_tokens_details
    ?.reasoning_tokens;

/** A streamed chat, taken apart: the thoughts' and the answer's deltas (in order), and the usage chunk. */
async function streamed(client: OpenAI, body: ChatCompletionCreateParamsNonStreaming) {
  const stream = await client.chat.completions.create({
    ...body,
    stream: true,
    stream_options: { include_usage: true },
  });
  const order: ("reasoning" | "content")[] = [];
  let reasoning = "";
  let content = "";
  let usage: unknown = null;
  let sawReasoningKey = false;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const delta = chunk.choices[0]?.delta as (Reasoned & { content?: string | null }) | undefined;
    if (delta === undefined) continue;
    if ("reasoning_content" in delta) sawReasoningKey = true;
    if (delta.reasoning_content) {
      reasoning += delta.reasoning_content;
      order.push("reasoning");
    }
    if (delta.content) {
      content += delta.content;
      order.push("content");
    }
  }
  return { reasoning, content, usage, order, sawReasoningKey };
}

describe("Reasoning models (DeepSeek R1's chat template) through the openai client, on a real scheduler and worker", () => {
  let stack: OpenAIStack;
  let client: OpenAI;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "corral-openai-r1-"));
    const template = await readFile(join(repoRootDir, "test/fixtures/chat-templates/deepseek-r1.jinja"), "utf8");
    const models: { id: string; path: string }[] = [];
    for (const [id, name] of [
      [STORIES_R1, STORIES],
      [RANDOM_R1, TINY_RANDOM],
    ] as const) {
      const path = join(dir, `${id}.gguf`);
      await copyGgufWithChatTemplate(join(sharedModelsDir(), `${name}.gguf`), path, template);
      models.push({ id, path });
    }
    stack = await startStack({ models });
    client = stack.client();
  });

  after(async () => {
    await stack?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("(a) tiny weights with R1's template: the thoughts are message.reasoning_content, the answer content; the job record has both", async () => {
    const body = {
      model: RANDOM_R1,
      messages: STORY,
      max_tokens: 20,
      temperature: 0,
      max_reasoning_tokens: 6,
    } as ChatCompletionCreateParamsNonStreaming;
    const { data, response } = await client.chat.completions.create(body).withResponse();
    const reasoning = reasoningOf(data);
    const content = data.choices[0]!.message.content;
    assert.ok(reasoning && reasoning.length > 0, `reasoning_content: ${reasoning}`);
    assert.ok(content && content.length > 0, `content: ${content}`);
    assert.ok(!content.includes("<think>") && !content.includes("</think>"));
    assert.equal(reasoningTokens(data.usage), 6, "the thought stops at max_reasoning_tokens");
    assert.equal(data.usage!.completion_tokens, 20, "thought tokens count in completion_tokens");
    assert.deepEqual(Object.keys(data.choices[0]!.message), ["role", "content", "reasoning_content", "refusal"]);

    const record = await stack.job(response.headers.get("x-corral-job-id")!);
    assert.equal(record.result?.reasoning, reasoning);
    assert.equal(record.result?.text, content);
    assert.equal(record.result?.usage.reasoning_tokens, 6);

    // Streamed (one sequence, temperature 0: the same generation): the deltas add up to the same texts.
    const stream = await streamed(client, body);
    assert.equal(stream.reasoning, reasoning);
    assert.equal(stream.content, content);
    assert.equal(stream.order.indexOf("content"), stream.order.lastIndexOf("reasoning") + 1, "thoughts come first");
    assert.equal(reasoningTokens(stream.usage), 6);
  });

  test("(b) stories260K thinks (R1's template opens the thought): streamed deltas add up, usage counts the thought, the budget holds", async () => {
    for (const budget of [5, 12]) {
      const body = {
        model: STORIES_R1,
        messages: STORY,
        max_tokens: 30,
        temperature: 0,
        max_reasoning_tokens: budget,
      } as ChatCompletionCreateParamsNonStreaming;
      const whole = await client.chat.completions.create(body);
      const reasoning = reasoningOf(whole)!;
      assert.ok(reasoning.length > 0);
      assert.ok(whole.choices[0]!.message.content!.length > 0, "the answer follows the closed thought");
      assert.equal(reasoningTokens(whole.usage), budget);
      const stream = await streamed(client, body);
      assert.equal(stream.reasoning, reasoning);
      assert.equal(stream.content, whole.choices[0]!.message.content);
      assert.equal(reasoningTokens(stream.usage), budget);
    }
  });

  test("reasoning_effort sets the budget: none turns thinking off, low thinks past a small max_tokens", async () => {
    const none = await client.chat.completions.create({
      model: STORIES_R1,
      messages: STORY,
      max_tokens: 16,
      temperature: 0,
      reasoning_effort: "none" as "low",
    });
    assert.equal(reasoningOf(none), "");
    assert.equal(reasoningTokens(none.usage), 0);
    assert.ok(none.choices[0]!.message.content!.length > 0);

    const low = await client.chat.completions.create({
      model: STORIES_R1,
      messages: STORY,
      max_tokens: 16,
      temperature: 0,
      reasoning_effort: "low",
    });
    // stories260K never closes a thought; low's 1024-token budget outlasts max_tokens.
    assert.equal(reasoningTokens(low.usage), 16);
    assert.equal(low.choices[0]!.message.content, "");
    assert.equal(low.choices[0]!.finish_reason, "length");
  });

  test("a model without thought segments answers as before: no reasoning_content, no completion_tokens_details", async () => {
    const body = {
      model: STORIES,
      messages: STORY,
      max_tokens: 8,
      temperature: 0,
      reasoning_effort: "high",
    } as ChatCompletionCreateParamsNonStreaming;
    const data = await client.chat.completions.create(body);
    assert.deepEqual(Object.keys(data.choices[0]!.message), ["role", "content", "refusal"]);
    assert.deepEqual(Object.keys(data.usage!).sort(), ["completion_tokens", "prompt_tokens", "total_tokens"]);
    const stream = await streamed(client, body);
    assert.equal(stream.sawReasoningKey, false);
    assert.equal(stream.content, data.choices[0]!.message.content);
  });

  test("with tools (a stream sent whole) the thoughts come before the answer as well", async () => {
    const body = {
      model: STORIES_R1,
      messages: STORY,
      max_tokens: 20,
      temperature: 0,
      max_reasoning_tokens: 5,
      tools: [{ type: "function", function: { name: "lookup", parameters: { type: "object", properties: {} } } }],
    } as ChatCompletionCreateParamsNonStreaming;
    const whole = await client.chat.completions.create(body);
    const stream = await streamed(client, body);
    assert.ok(reasoningOf(whole)!.length > 0);
    assert.equal(stream.reasoning, reasoningOf(whole));
    assert.equal(stream.content, whole.choices[0]!.message.content ?? "");
    assert.equal(stream.order[0], "reasoning");
    assert.equal(reasoningTokens(stream.usage), 5);
  });

  test("native chat jobs reason too: POST /v1/jobs takes the same budget fields and records the thoughts", async () => {
    const submit = (extra: Record<string, unknown>) =>
      fetch(`${stack.baseURL}/jobs?wait=60`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ model: STORIES_R1, messages: STORY, max_tokens: 20, temperature: 0, ...extra }),
      });
    const response = await submit({ max_reasoning_tokens: 5 });
    assert.equal(response.status, 200);
    const record = JobRecord.parse(await response.json());
    assert.equal(record.result?.usage.reasoning_tokens, 5);
    assert.ok(record.result?.reasoning && record.result.reasoning.length > 0);
    const off = JobRecord.parse(await (await submit({ reasoning_effort: "none" })).json());
    assert.equal(off.result?.reasoning, "");
    const both = await submit({ reasoning_effort: "low", max_reasoning_tokens: 5 });
    assert.equal(both.status, 400);
    assert.equal(((await both.json()) as { error: { param: string } }).error.param, "max_reasoning_tokens");
  });

  test("a job cancelled mid-thought keeps its partial thoughts in its record", async () => {
    const { data: stream, response } = await client.chat.completions
      .create({
        model: STORIES_R1,
        messages: STORY,
        max_tokens: 900,
        temperature: 0,
        reasoning_effort: "low",
        stream: true,
      })
      .withResponse();
    const jobId = response.headers.get("x-corral-job-id")!;
    let deleted = false;
    await assert.rejects(async () => {
      for await (const chunk of stream) {
        if (deleted || !(chunk.choices[0]?.delta as Reasoned | undefined)?.reasoning_content) continue;
        deleted = true;
        const cancel = await fetch(`${stack.baseURL}/jobs/${jobId}`, {
          method: "DELETE",
          headers: { authorization: `Bearer ${API_KEY}` },
        });
        assert.equal(cancel.status, 200);
      }
    }, OpenAI.APIError);
    const record = await stack.waitForJob(jobId, (r) => r.status === "cancelled" && r.result !== null);
    assert.equal(record.result?.finish_reason, "cancelled");
    assert.ok(record.result?.reasoning && record.result.reasoning.length > 0, "the partial thoughts are kept");
    assert.equal(record.result?.text, "", "cancelled mid-thought: no answer yet");
    assert.ok((record.result?.usage.completion_tokens ?? 900) < 900);
  });

  test("bad reasoning fields are a 400 naming the field", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ reasoning_effort: "extreme" }, "reasoning_effort"],
      [{ max_reasoning_tokens: -1 }, "max_reasoning_tokens"],
      [{ max_reasoning_tokens: 1.5 }, "max_reasoning_tokens"],
      [{ reasoning_effort: "low", max_reasoning_tokens: 10 }, "max_reasoning_tokens"],
    ];
    for (const [extra, param] of cases) {
      const response = await fetch(`${stack.baseURL}/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ model: STORIES_R1, messages: STORY, max_tokens: 4, ...extra }),
      });
      assert.equal(response.status, 400, JSON.stringify(extra));
      const body = (await response.json()) as { error: { param: string; type: string } };
      assert.equal(body.error.param, param, JSON.stringify(body));
      assert.equal(body.error.type, "invalid_request_error");
    }
  });
});
