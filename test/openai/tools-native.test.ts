import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv } from "ajv";
import OpenAI from "openai";
import type { ChatCompletionMessageParam, ChatCompletionTool } from "openai/resources/chat/completions";
import { acquireLlama } from "@corral/llama";
import { ModelTokenizer } from "@corral/scheduler";
import { copyGgufWithChatTemplate } from "../support/gguf-writer.js";
import { repoRootDir, sharedModelsDir } from "../support/models.js";
import { API_KEY, STORIES, startStack, type OpenAIStack } from "./harness.js";

/** stories260K under Qwen 2.5's real chat template (native tool syntax), and under DeepSeek R1's (thinks). */
const QWEN = "stories260K-qwen";
const R1 = "stories260K-r1";
/** Context of each sequence: stories260K's 512-token vocabulary spells Qwen's tool prompt in many tokens. */
const CONTEXT = 2048;

const WEATHER = {
  type: "object",
  properties: { city: { type: "string", enum: ["Paris", "Rome", "Oslo"] }, metric: { type: "boolean" } },
  required: ["city", "metric"],
  additionalProperties: false,
};
const SEARCH = {
  type: "object",
  properties: { query: { type: "string", maxLength: 24 } },
  required: ["query"],
  additionalProperties: false,
};
const TOOLS: ChatCompletionTool[] = [
  { type: "function", function: { name: "get_weather", description: "Weather in a city", parameters: WEATHER } },
  { type: "function", function: { name: "search", description: "Searches the web", parameters: SEARCH } },
];
const ASK: ChatCompletionMessageParam[] = [{ role: "user", content: "What is the weather in Paris?" }];

describe("tool calls in the chat template's own syntax, through the openai client, on a real scheduler and worker", () => {
  let stack: OpenAIStack;
  let client: OpenAI;
  let dir: string;
  /** The scheduler's own count of a job's prompt (its prompt-length guard), on each model's vocabulary. */
  const tokenizers = new Map<string, ModelTokenizer>();
  const ajv = new Ajv({ strict: false });
  const validators = { get_weather: ajv.compile(WEATHER), search: ajv.compile(SEARCH) };

  const assertValidCall = (call: OpenAI.Chat.Completions.ChatCompletionMessageToolCall): string => {
    assert.equal(call.type, "function");
    assert.match(call.id, /^call_[A-Za-z0-9_-]+$/);
    if (call.type !== "function") throw new Error("not a function call");
    const name = call.function.name as keyof typeof validators;
    assert.ok(name in validators, `a known function: ${name}`);
    const args: unknown = JSON.parse(call.function.arguments);
    assert.ok(validators[name](args), `${name}(${call.function.arguments})`);
    return name;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "corral-openai-tools-"));
    const models: { id: string; path: string; context_size: number }[] = [];
    for (const [id, template] of [
      [QWEN, "qwen2.5-instruct.jinja"],
      [R1, "deepseek-r1.jinja"],
    ] as const) {
      const path = join(dir, `${id}.gguf`);
      const text = await readFile(join(repoRootDir, "test/fixtures/chat-templates", template), "utf8");
      await copyGgufWithChatTemplate(join(sharedModelsDir(), `${STORIES}.gguf`), path, text);
      models.push({ id, path, context_size: CONTEXT });
      const { llama, release } = await acquireLlama(false, () => {});
      release();
      tokenizers.set(id, await ModelTokenizer.load(llama, path));
    }
    stack = await startStack({ models });
    client = stack.client();
  });

  after(async () => {
    for (const tokenizer of tokenizers.values()) await tokenizer.dispose();
    await stack?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("tool_choice required: a valid call in Qwen's syntax (finish_reason tool_calls, content null), counted as the native prompt", async () => {
    for (const seed of [1, 2, 3]) {
      const { data, response } = await client.chat.completions
        .create({ model: QWEN, messages: ASK, tools: TOOLS, tool_choice: "required", seed, max_tokens: 200 })
        .withResponse();
      const choice = data.choices[0]!;
      assert.equal(choice.finish_reason, "tool_calls");
      assert.equal(choice.message.content, null);
      assert.ok(choice.message.tool_calls?.length, "at least one call");
      for (const call of choice.message.tool_calls) assertValidCall(call);
      // The worker ran the template's tool prompt: the job's prompt tokens are those of the native rendering.
      const record = await stack.job(response.headers.get("x-corral-job-id")!);
      assert.equal(record.result?.tool_calls?.length, choice.message.tool_calls.length);
      const tools = {
        functions: TOOLS.map((t) => ({
          name: t.type === "function" ? t.function.name : "",
          description: t.type === "function" ? (t.function.description ?? "") : "",
          parameters: (t.type === "function" ? t.function.parameters : {}) as Record<string, unknown>,
        })),
        required: true,
        max_calls: 8,
      };
      const messages = [{ role: "user" as const, content: "What is the weather in Paris?" }];
      assert.equal(data.usage!.prompt_tokens, tokenizers.get(QWEN)!.countChat({ messages, tools }).prompt);
    }
  });

  test("a named tool_choice with parallel_tool_calls false makes exactly one call of that function", async () => {
    for (const seed of [1, 2]) {
      const data = await client.chat.completions.create({
        model: QWEN,
        messages: ASK,
        tools: TOOLS,
        tool_choice: { type: "function", function: { name: "search" } },
        parallel_tool_calls: false,
        seed,
        max_tokens: 200,
      });
      const calls = data.choices[0]!.message.tool_calls ?? [];
      assert.equal(calls.length, 1);
      assert.equal(assertValidCall(calls[0]!), "search");
    }
  });

  test("streaming: the calls come as delta.tool_calls with their index, then finish_reason tool_calls", async () => {
    const stream = await client.chat.completions.create({
      model: QWEN,
      messages: ASK,
      tools: TOOLS,
      tool_choice: "required",
      seed: 4,
      // Room for all 8 calls stories260K writes with this seed (a call cut by max_tokens streams cut, finish_reason length).
      max_tokens: 400,
      stream: true,
    });
    const calls: { index: number; id?: string; name?: string; arguments: string }[] = [];
    const finishes: (string | null)[] = [];
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (!choice) continue;
      finishes.push(choice.finish_reason);
      for (const delta of choice.delta.tool_calls ?? []) {
        const call = (calls[delta.index] ??= { index: delta.index, arguments: "" });
        if (delta.id) call.id = delta.id;
        if (delta.function?.name) call.name = delta.function.name;
        call.arguments += delta.function?.arguments ?? "";
      }
    }
    assert.ok(calls.length > 0);
    calls.forEach((call, i) => {
      assert.equal(call.index, i);
      assertValidCall({ id: call.id!, type: "function", function: { name: call.name!, arguments: call.arguments } });
    });
    assert.equal(finishes.at(-1), "tool_calls");
  });

  test("a conversation with assistant tool_calls and tool results runs in the template's form; auto answers", async () => {
    const messages: ChatCompletionMessageParam[] = [
      ...ASK,
      {
        role: "assistant",
        content: null,
        tool_calls: [
          {
            id: "call_1",
            type: "function",
            function: { name: "get_weather", arguments: '{"city":"Paris","metric":true}' },
          },
          { id: "call_2", type: "function", function: { name: "search", arguments: '{"query":"Paris"}' } },
        ],
      },
      { role: "tool", tool_call_id: "call_1", content: '{"sky":"clear","temp":21}' },
      { role: "tool", tool_call_id: "call_2", content: "no results" },
    ];
    const data = await client.chat.completions.create({ model: QWEN, messages, tools: TOOLS, seed: 1, max_tokens: 16 });
    const choice = data.choices[0]!;
    assert.ok(["stop", "length", "tool_calls"].includes(choice.finish_reason));
    if (choice.finish_reason !== "tool_calls") assert.ok((choice.message.content ?? "").length > 0);
    const forced = await client.chat.completions.create({
      model: QWEN,
      messages,
      tools: TOOLS,
      tool_choice: "required",
      seed: 2,
      max_tokens: 200,
    });
    for (const call of forced.choices[0]!.message.tool_calls ?? []) assertValidCall(call);
    assert.equal(forced.choices[0]!.finish_reason, "tool_calls");
  });

  test("the scheduler counts a chat as the worker feeds it: with the <think> R1's template opens, and with native tools", async () => {
    const post = (body: unknown) =>
      fetch(`${stack.baseURL}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` },
        body: JSON.stringify(body),
      });
    const cases = [
      { model: R1, body: { max_reasoning_tokens: 4 }, job: { reasoning_budget: 4 } },
      {
        model: QWEN,
        body: { tools: [TOOLS[1]] },
        job: {
          tools: {
            functions: [{ name: "search", description: "Searches the web", parameters: SEARCH }],
            required: false,
            max_calls: 8,
          },
        },
      },
    ];
    for (const { model, body, job } of cases) {
      const messages = [{ role: "user" as const, content: "Tell me about a cat." }];
      const { prompt: tokens, reserved } = tokenizers.get(model)!.countChat({ messages, ...job });
      assert.equal(reserved > 0, model === QWEN, "native tools keep room for the call syntax");
      const room = CONTEXT - 1 - tokens - reserved;
      const refused = await post({ model, messages, ...body, max_tokens: room + 1 });
      assert.equal(refused.status, 400, `${model}: one token over is refused`);
      assert.equal(((await refused.json()) as { error: { code: string } }).error.code, "context_length_exceeded");
      const accepted = await post({ model, messages, ...body, max_tokens: room, temperature: 0, stop: ["."] });
      assert.equal(accepted.status, 200, await accepted.clone().text());
      const data = (await accepted.json()) as { usage: { prompt_tokens: number } };
      assert.equal(data.usage.prompt_tokens, tokens, `${model}: the worker counted the same prompt`);
    }
  });
});
