import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText } from "ai";
import OpenAI from "openai";
import type { ChatCompletionCreateParamsNonStreaming } from "openai/resources/chat/completions";
import type {
  Response,
  ResponseCreateParamsNonStreaming,
  ResponseInputItem,
  ResponseReasoningItem,
  ResponseStreamEvent,
} from "openai/resources/responses/responses";
import { copyGgufWithChatTemplate } from "../support/gguf-writer.js";
import { repoRootDir, sharedModelsDir } from "../support/models.js";
import { API_KEY, STORIES, TINY_RANDOM, startStack, type OpenAIStack } from "./harness.js";

/** stories260K and llama-2-tiny-random under DeepSeek R1's real chat template (as in reasoning.test.ts). */
const STORIES_R1 = "stories260K-r1";
const RANDOM_R1 = "tiny-random-r1";
const PROMPT = "Once upon a time";
const LOOKUP = { type: "object", properties: { q: { type: "string", maxLength: 8 } }, required: ["q"] };

type Params = Omit<ResponseCreateParamsNonStreaming, "stream"> & { max_reasoning_tokens?: number };

/** The reasoning item, if any, and the text of the first message. */
const reasoningOf = (response: Response): ResponseReasoningItem | undefined =>
  response.output.find((item): item is ResponseReasoningItem => item.type === "reasoning");
const thoughtOf = (response: Response): string | undefined => reasoningOf(response)?.content?.[0]?.text;

/** A streamed response, taken apart: its events, the reasoning deltas joined, and the final response. */
async function streamed(client: OpenAI, params: Params) {
  const stream = client.responses.stream(params as Parameters<OpenAI["responses"]["stream"]>[0]);
  const events: ResponseStreamEvent[] = [];
  for await (const event of stream) events.push(event);
  const final = await stream.finalResponse();
  const reasoning = events.map((e) => (e.type === "response.reasoning_text.delta" ? e.delta : "")).join("");
  const text = events.map((e) => (e.type === "response.output_text.delta" ? e.delta : "")).join("");
  const types = events.map((e) => e.type);
  return { events, types, reasoning, text, final };
}

/** The event types, with runs of the same delta type shown once. */
const shape = (types: readonly string[]): string[] =>
  types.filter((type, i) => !type.endsWith(".delta") || types[i - 1] !== type);

describe("Reasoning models through /v1/responses (DeepSeek R1's chat template), with the openai client", () => {
  let stack: OpenAIStack;
  let client: OpenAI;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "corral-responses-r1-"));
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

  /** The chat route's reply to the same request (same budget, temperature 0). */
  const chatReply = async (params: Params, budget: Record<string, unknown>) => {
    const chat = await client.chat.completions.create({
      model: params.model!,
      messages: [{ role: "user", content: params.input as string }],
      max_tokens: params.max_output_tokens!,
      temperature: 0,
      ...budget,
    } as ChatCompletionCreateParamsNonStreaming);
    const message = chat.choices[0]!.message as { content: string | null; reasoning_content?: string };
    const usage = chat.usage as { completion_tokens_details?: { reasoning_tokens: number } } | undefined;
    return { reasoning: message.reasoning_content, content: message.content, tokens: usage?.completion_tokens_details };
  };

  test("responses.create: a reasoning item before the message, its text the chat route's reasoning_content; usage counts it", async () => {
    const params: Params = {
      model: RANDOM_R1,
      input: PROMPT,
      max_output_tokens: 20,
      temperature: 0,
      max_reasoning_tokens: 6,
    };
    const data = await client.responses.create(params as ResponseCreateParamsNonStreaming);
    assert.deepEqual(
      data.output.map((item) => item.type),
      ["reasoning", "message"],
    );
    const item = data.output[0] as ResponseReasoningItem;
    assert.match(item.id, /^rs_[A-Za-z0-9_-]+$/);
    assert.deepEqual(item.summary, [], "Corral writes no summary");
    assert.equal(item.status, "completed");
    assert.equal(item.content?.length, 1);
    assert.equal(item.content[0]!.type, "reasoning_text");
    assert.ok(item.content[0]!.text.length > 0);
    assert.ok(!data.output_text.includes("<think>") && !data.output_text.includes("</think>"));
    assert.equal(data.usage!.output_tokens_details.reasoning_tokens, 6, "the thought stops at max_reasoning_tokens");
    assert.equal(data.usage!.output_tokens, 20, "thought tokens count in output_tokens");

    const chat = await chatReply(params, { max_reasoning_tokens: 6 });
    assert.equal(item.content[0]!.text, chat.reasoning, "the same thoughts as chat's reasoning_content");
    assert.equal(data.output_text, chat.content, "the same answer as chat's content");
    assert.equal(chat.tokens?.reasoning_tokens, 6);
  });

  test("responses.stream: the reasoning item's events come first, its deltas add up to the thoughts, the message follows at output_index 1", async () => {
    const params: Params = {
      model: RANDOM_R1,
      input: PROMPT,
      max_output_tokens: 20,
      temperature: 0,
      max_reasoning_tokens: 6,
    };
    const whole = await client.responses.create(params as ResponseCreateParamsNonStreaming);
    const { events, types, reasoning, text, final } = await streamed(client, params);
    assert.deepEqual(shape(types), [
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.reasoning_text.delta",
      "response.reasoning_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      whole.status === "incomplete" ? "response.incomplete" : "response.completed",
    ]);
    assert.ok(types.filter((t) => t === "response.reasoning_text.delta").length > 1, "the thoughts come in pieces");
    assert.equal(reasoning, thoughtOf(whole), "the deltas add up to the non-streamed thoughts");
    assert.equal(text, whole.output_text);
    const byIndex = (type: string) =>
      events.filter((e) => e.type === type).map((e) => (e as { output_index: number }).output_index);
    assert.deepEqual(
      byIndex("response.reasoning_text.delta"),
      Array(byIndex("response.reasoning_text.delta").length).fill(0),
    );
    assert.deepEqual(byIndex("response.output_item.added"), [0, 1]);
    assert.ok(byIndex("response.output_text.delta").every((index) => index === 1));
    const added = events.find((e) => e.type === "response.output_item.added");
    assert.deepEqual(added?.type === "response.output_item.added" && added.item, {
      id: reasoningOf(final)!.id,
      type: "reasoning",
      status: "in_progress",
      summary: [],
      content: [],
    });
    const done = events.find((e) => e.type === "response.reasoning_text.done");
    assert.equal(done?.type === "response.reasoning_text.done" && done.text, reasoning);

    // The client's accumulated response equals the one the server sent last.
    assert.deepEqual(
      final.output.map((item) => item.type),
      ["reasoning", "message"],
    );
    assert.equal(thoughtOf(final), reasoning);
    assert.equal(final.output_text, whole.output_text);
    assert.equal(final.usage!.output_tokens_details.reasoning_tokens, 6);
  });

  test("budgets hold on stories260K (R1's template opens the thought): streamed and not, as on the chat route", async () => {
    for (const budget of [5, 12]) {
      const params: Params = {
        model: STORIES_R1,
        input: PROMPT,
        max_output_tokens: 30,
        temperature: 0,
        max_reasoning_tokens: budget,
      };
      const whole = await client.responses.create(params as ResponseCreateParamsNonStreaming);
      assert.equal(whole.usage!.output_tokens_details.reasoning_tokens, budget);
      assert.ok(whole.output_text.length > 0, "the answer follows the closed thought");
      const chat = await chatReply(params, { max_reasoning_tokens: budget });
      assert.equal(thoughtOf(whole), chat.reasoning);
      assert.equal(whole.output_text, chat.content);
      const stream = await streamed(client, params);
      assert.equal(stream.reasoning, thoughtOf(whole));
      assert.equal(stream.text, whole.output_text);
      assert.equal(stream.final.usage!.output_tokens_details.reasoning_tokens, budget);
    }
  });

  test("reasoning.effort: none means no reasoning item; low outlasts a small max_output_tokens, leaving only an incomplete reasoning item", async () => {
    const none = await client.responses.create({
      model: STORIES_R1,
      input: PROMPT,
      max_output_tokens: 16,
      temperature: 0,
      reasoning: { effort: "none" },
    });
    assert.deepEqual(
      none.output.map((item) => item.type),
      ["message"],
    );
    assert.equal(none.usage!.output_tokens_details.reasoning_tokens, 0);
    assert.ok(none.output_text.length > 0);
    assert.deepEqual(none.reasoning, { effort: "none", summary: null }, "the request's reasoning is echoed");
    const chatNone = await chatReply(
      { model: STORIES_R1, input: PROMPT, max_output_tokens: 16 },
      { reasoning_effort: "none" },
    );
    assert.equal(none.output_text, chatNone.content);

    const params: Params = {
      model: STORIES_R1,
      input: PROMPT,
      max_output_tokens: 16,
      temperature: 0,
      reasoning: { effort: "low", summary: "auto" },
    };
    const low = await client.responses.create(params as ResponseCreateParamsNonStreaming);
    // stories260K never closes a thought; low's 1024-token budget outlasts max_output_tokens.
    assert.equal(low.status, "incomplete");
    assert.deepEqual(low.incomplete_details, { reason: "max_output_tokens" });
    assert.deepEqual(
      low.output.map((item) => `${item.type}:${"status" in item ? item.status : ""}`),
      ["reasoning:incomplete"],
      "cut mid-thought: no message, as on OpenAI",
    );
    assert.equal(low.output_text, "");
    assert.equal(low.usage!.output_tokens_details.reasoning_tokens, 16);
    assert.deepEqual(low.reasoning, { effort: "low", summary: "auto" });
    assert.deepEqual(reasoningOf(low)!.summary, [], "summary is accepted, but none is written");
    const chatLow = await chatReply(params, { reasoning_effort: "low" });
    assert.equal(thoughtOf(low), chatLow.reasoning);

    const stream = await streamed(client, params);
    assert.deepEqual(shape(stream.types), [
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.reasoning_text.delta",
      "response.reasoning_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.incomplete",
    ]);
    assert.equal(stream.reasoning, thoughtOf(low));
    assert.equal(reasoningOf(stream.final)?.status, "incomplete");
    assert.equal(stream.final.usage!.output_tokens_details.reasoning_tokens, 16);
  });

  test("a model without thought segments answers as before: no reasoning item or events, reasoning_tokens 0", async () => {
    const params: Params = {
      model: STORIES,
      input: PROMPT,
      max_output_tokens: 8,
      temperature: 0,
      reasoning: { effort: "high" },
    };
    const data = await client.responses.create(params as ResponseCreateParamsNonStreaming);
    assert.deepEqual(
      data.output.map((item) => item.type),
      ["message"],
    );
    assert.equal(data.usage!.output_tokens_details.reasoning_tokens, 0);
    const stream = await streamed(client, params);
    assert.ok(!stream.types.some((t) => t.includes("reasoning")));
    assert.equal(stream.text, data.output_text);
    assert.deepEqual(
      stream.final.output.map((item) => item.type),
      ["message"],
    );
  });

  test("a follow-up turn may send the reasoning item back in input: it is left out of the prompt", async () => {
    const first = await client.responses.create({
      model: STORIES_R1,
      input: PROMPT,
      max_output_tokens: 12,
      temperature: 0,
      max_reasoning_tokens: 4,
    } as ResponseCreateParamsNonStreaming);
    assert.equal(first.output[0]!.type, "reasoning");
    const message = first.output.find((item) => item.type === "message")!;
    const next = { role: "user" as const, content: "And then?" };
    const withThought = await client.responses.create({
      model: STORIES_R1,
      input: [{ role: "user", content: PROMPT }, ...(first.output as ResponseInputItem[]), next],
      max_output_tokens: 4,
      temperature: 0,
      include: ["reasoning.encrypted_content"],
    });
    const without = await client.responses.create({
      model: STORIES_R1,
      input: [{ role: "user", content: PROMPT }, message, next],
      max_output_tokens: 4,
      temperature: 0,
    });
    assert.equal(withThought.usage!.input_tokens, without.usage!.input_tokens);
    assert.equal(withThought.output_text, without.output_text);
  });

  test("with tools (tool_choice auto, a stream sent whole) the reasoning item comes first as well", async () => {
    const params: Params = {
      model: STORIES_R1,
      input: PROMPT,
      max_output_tokens: 20,
      temperature: 0,
      max_reasoning_tokens: 5,
      tools: [{ type: "function", name: "lookup", parameters: LOOKUP, strict: true }],
    };
    const whole = await client.responses.create(params as ResponseCreateParamsNonStreaming);
    assert.equal(whole.output[0]!.type, "reasoning");
    assert.equal(whole.usage!.output_tokens_details.reasoning_tokens, 5);
    const chat = await client.chat.completions.create({
      model: STORIES_R1,
      messages: [{ role: "user", content: PROMPT }],
      max_tokens: 20,
      temperature: 0,
      max_reasoning_tokens: 5,
      tools: [{ type: "function", function: { name: "lookup", parameters: LOOKUP } }],
    } as ChatCompletionCreateParamsNonStreaming);
    assert.equal(thoughtOf(whole), (chat.choices[0]!.message as { reasoning_content?: string }).reasoning_content);
    const stream = await streamed(client, params);
    assert.equal(stream.types[2], "response.output_item.added");
    assert.equal(stream.reasoning, thoughtOf(whole));
    assert.deepEqual(
      stream.final.output.map((item) => item.type),
      whole.output.map((item) => item.type),
    );
  });

  test("a job cancelled mid-thought: error and response.failed, whose output is the partial reasoning item", async () => {
    const { data: stream, response } = await client.responses
      .create({
        model: STORIES_R1,
        input: PROMPT,
        max_output_tokens: 900,
        temperature: 0,
        reasoning: { effort: "low" },
        stream: true,
      })
      .withResponse();
    const jobId = response.headers.get("x-corral-job-id")!;
    const events: ResponseStreamEvent[] = [];
    let cancelled = false;
    for await (const event of stream) {
      events.push(event);
      if (cancelled || event.type !== "response.reasoning_text.delta") continue;
      cancelled = true;
      const cancel = await fetch(`${stack.baseURL}/jobs/${jobId}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${API_KEY}` },
      });
      assert.equal(cancel.status, 200);
    }
    const [error, failed] = events.slice(-2);
    assert.equal(error?.type === "error" && error.code, "job_cancelled");
    assert.equal(failed?.type, "response.failed");
    if (failed?.type !== "response.failed") return;
    const thought = events.map((e) => (e.type === "response.reasoning_text.delta" ? e.delta : "")).join("");
    assert.deepEqual(
      failed.response.output.map((item) => item.type === "reasoning" && [item.status, item.content?.[0]?.text]),
      [["incomplete", thought]],
      "the thoughts sent so far, in an incomplete reasoning item",
    );
    assert.ok(!events.some((e) => e.type === "response.output_item.done"), "the thought was never closed");
  });

  test("the AI SDK's Responses provider, as it asks a reasoning model (reasoning.effort and summary, encrypted_content included, store false): reasoning tokens counted, streamed or not", async () => {
    const provider = createOpenAI({ baseURL: stack.baseURL, apiKey: API_KEY });
    const options = {
      model: provider.responses(STORIES_R1),
      prompt: PROMPT,
      maxOutputTokens: 16,
      maxRetries: 0,
      providerOptions: {
        openai: { forceReasoning: true, reasoningEffort: "low", reasoningSummary: "auto", store: false },
      },
    } as const;
    const result = await generateText(options);
    // stories260K never closes a thought: low's budget outlasts maxOutputTokens.
    assert.equal(result.usage.outputTokenDetails.reasoningTokens, 16);
    assert.equal(result.usage.outputTokens, 16);
    assert.equal(result.text, "");
    assert.equal(result.reasoning.length, 1, "the reasoning item, with no summary text");
    const sent = result.request.body as { reasoning?: unknown; include?: string[] };
    assert.deepEqual(sent.reasoning, { effort: "low", summary: "auto" }, "what the SDK sends");
    assert.ok(sent.include?.includes("reasoning.encrypted_content"));

    const stream = streamText(options);
    let error: unknown = null;
    for await (const part of stream.fullStream) if (part.type === "error") error = part.error;
    assert.equal(error, null);
    assert.equal((await stream.usage).outputTokenDetails.reasoningTokens, 16);
    assert.equal(await stream.text, "");
  });
});
