import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Ajv } from "ajv";
import OpenAI from "openai";
import type { ChatCompletionTool } from "openai/resources/chat/completions";
import { STORIES, TINY_RANDOM, startStack, type OpenAIStack } from "./harness.js";

const WEATHER = {
  type: "object",
  properties: {
    city: { type: "string", minLength: 1, maxLength: 20 },
    unit: { type: "string", enum: ["celsius", "fahrenheit"] },
  },
  required: ["city", "unit"],
  additionalProperties: false,
};
const ADD = {
  type: "object",
  properties: { a: { type: "integer", minimum: -1000, maximum: 1000 }, b: { type: "integer" } },
  required: ["a", "b"],
  additionalProperties: false,
};
const TOOLS: ChatCompletionTool[] = [
  { type: "function", function: { name: "get_weather", description: "Weather in a city", parameters: WEATHER } },
  { type: "function", function: { name: "add", description: "Adds two integers", parameters: ADD } },
];
const ASK = [{ role: "user" as const, content: "What is the weather in Paris?" }];

describe("tool calling through the openai client, on a real scheduler and worker", () => {
  let stack: OpenAIStack;
  let client: OpenAI;
  const ajv = new Ajv({ strict: false });
  const validators = { get_weather: ajv.compile(WEATHER), add: ajv.compile(ADD) };

  /** Checks a call is OpenAI's shape and its arguments validate against its function's parameters. */
  const assertValidCall = (call: OpenAI.Chat.Completions.ChatCompletionMessageToolCall): string => {
    assert.equal(call.type, "function");
    assert.match(call.id, /^call_[A-Za-z0-9_-]+$/);
    if (call.type !== "function") throw new Error("not a function call");
    const name = call.function.name as keyof typeof validators;
    assert.ok(name in validators, `a known function: ${name}`);
    const args: unknown = JSON.parse(call.function.arguments);
    assert.ok(
      validators[name](args),
      `${name}(${call.function.arguments}): ${JSON.stringify(validators[name].errors)}`,
    );
    return name;
  };

  before(async () => {
    stack = await startStack();
    client = stack.client();
  });

  after(async () => {
    await stack?.close();
  });

  for (const model of [STORIES, TINY_RANDOM]) {
    test(`${model}: tool_choice required makes valid calls (finish_reason tool_calls, content null), at several seeds`, async () => {
      for (const seed of [1, 2, 3]) {
        const data = await client.chat.completions.create({
          model,
          messages: ASK,
          tools: TOOLS,
          tool_choice: "required",
          temperature: 1,
          seed,
          max_tokens: 400,
        });
        const choice = data.choices[0]!;
        assert.equal(choice.finish_reason, "tool_calls", `seed ${seed}`);
        assert.equal(choice.message.content, null);
        const calls = choice.message.tool_calls ?? [];
        assert.ok(calls.length >= 1 && calls.length <= 8);
        for (const call of calls) assertValidCall(call);
        assert.equal(new Set(calls.map((c) => c.id)).size, calls.length, "ids are distinct");
      }
    });
  }

  test("a named tool_choice calls only that function; parallel_tool_calls false makes exactly one call", async () => {
    for (const seed of [4, 5]) {
      const data = await client.chat.completions.create({
        model: STORIES,
        messages: ASK,
        tools: TOOLS,
        tool_choice: { type: "function", function: { name: "add" } },
        parallel_tool_calls: false,
        temperature: 1,
        seed,
        max_tokens: 200,
      });
      const calls = data.choices[0]!.message.tool_calls!;
      assert.equal(calls.length, 1);
      assert.equal(assertValidCall(calls[0]!), "add");
    }
  });

  test("streaming a forced call: its name first, then its arguments token by token, as delta.tool_calls; finish_reason tool_calls", async () => {
    const stream = await client.chat.completions.create({
      model: STORIES,
      messages: ASK,
      tools: TOOLS,
      tool_choice: "required",
      parallel_tool_calls: false,
      temperature: 0,
      max_tokens: 470,
      stream: true,
      stream_options: { include_usage: true },
    });
    const deltas: OpenAI.Chat.Completions.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      assert.ok(!choice.delta.content, "no content next to the calls");
      deltas.push(...(choice.delta.tool_calls ?? []));
      finish = choice.finish_reason ?? finish;
    }
    assert.equal(finish, "tool_calls");
    // OpenAI's format: a call's first delta has its id, type and name (and empty arguments); the rest add arguments.
    const first = deltas[0]!;
    assert.equal(first.index, 0);
    assert.match(first.id!, /^call_/);
    assert.equal(first.type, "function");
    assert.equal(first.function?.arguments, "");
    const rest = deltas.slice(1);
    assert.ok(rest.length > 3, `the arguments come in pieces (${rest.length} deltas)`);
    for (const delta of rest) {
      assert.deepEqual(Object.keys(delta).sort(), ["function", "index"]);
      assert.deepEqual(Object.keys(delta.function!), ["arguments"]);
    }
    const call = {
      id: first.id!,
      type: "function" as const,
      function: { name: first.function!.name!, arguments: deltas.map((d) => d.function?.arguments ?? "").join("") },
    };
    assertValidCall(call);
    assert.ok(usage && usage.completion_tokens > 0);

    const whole = await client.chat.completions.create({
      model: STORIES,
      messages: ASK,
      tools: TOOLS,
      tool_choice: "required",
      parallel_tool_calls: false,
      temperature: 0,
      max_tokens: 470,
    });
    const wholeCall = whole.choices[0]!.message.tool_calls![0]!;
    assert.equal(wholeCall.type === "function" && wholeCall.function.name, call.function.name);
    assert.deepEqual(
      JSON.parse(wholeCall.type === "function" ? wholeCall.function.arguments : ""),
      JSON.parse(call.function.arguments),
      "the same call as the non-streamed reply",
    );
  });

  test("parallel calls stream too: the openai client's stream helper assembles the same calls as the non-streamed reply", async () => {
    // Seeds at which stories260K writes 3 calls (one sequence at a fixed seed is deterministic).
    for (const seed of [2, 3]) {
      const params = {
        model: STORIES,
        messages: ASK,
        tools: TOOLS,
        tool_choice: "required",
        temperature: 1,
        seed,
      } as const;
      const final = await client.chat.completions.stream(params).finalChatCompletion();
      const whole = await client.chat.completions.create(params);
      const summary = (message: OpenAI.Chat.Completions.ChatCompletionMessage) =>
        (message.tool_calls ?? []).map((call) => {
          const name = assertValidCall(call);
          // Compared as compact JSON: the stream relays the model's own text (`-0`, spaces), the reply re-serializes it.
          return [name, call.type === "function" ? JSON.stringify(JSON.parse(call.function.arguments)) : null];
        });
      assert.equal(final.choices[0]!.finish_reason, "tool_calls");
      const streamed = summary(final.choices[0]!.message);
      assert.ok(streamed.length >= 2, `parallel calls at seed ${seed} (${streamed.length})`);
      assert.deepEqual(streamed, summary(whole.choices[0]!.message));
    }
  });

  test("a conversation with an assistant call and its tool result goes to the model; auto and none answer with content", async () => {
    const first = await client.chat.completions.create({
      model: STORIES,
      messages: ASK,
      tools: TOOLS,
      tool_choice: "required",
      parallel_tool_calls: false,
      temperature: 0,
      max_tokens: 470,
    });
    const call = first.choices[0]!.message.tool_calls![0]!;
    const conversation: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
      ...ASK,
      { role: "assistant", content: null, tool_calls: [call] },
      { role: "tool", tool_call_id: call.id, content: "It is sunny and 21 degrees." },
    ];
    const auto = await client.chat.completions.create({
      model: STORIES,
      messages: conversation,
      tools: TOOLS,
      temperature: 0,
      max_tokens: 24,
    });
    assert.equal(auto.choices[0]!.message.tool_calls, undefined, "stories260K does not write a call unprompted");
    assert.ok(auto.choices[0]!.message.content);
    const none = await client.chat.completions.create({
      model: STORIES,
      messages: conversation,
      tools: TOOLS,
      tool_choice: "none",
      temperature: 0,
      max_tokens: 24,
    });
    assert.ok(none.choices[0]!.message.content);
    // The tool result is in the prompt: without it the prompt is shorter.
    const withoutResult = await client.chat.completions.create({
      model: STORIES,
      messages: conversation.slice(0, 2),
      tools: TOOLS,
      tool_choice: "none",
      temperature: 0,
      max_tokens: 1,
    });
    assert.ok(none.usage!.prompt_tokens > withoutResult.usage!.prompt_tokens);
    // tool_choice "none" leaves the tools out of the prompt.
    assert.ok(auto.usage!.prompt_tokens > none.usage!.prompt_tokens);
  });

  test("bad tools are 400s naming the field", async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ tools: TOOLS, tool_choice: { type: "function", function: { name: "fly" } } }, "tool_choice", /fly/],
      [{ tool_choice: "required" }, "tool_choice", /needs `tools`/],
      [
        {
          tools: [
            {
              type: "function",
              function: { name: "f", parameters: { type: "object", properties: { x: { not: {} } } } },
            },
          ],
        },
        "tools.0.function.parameters",
        /\/properties\/x\/not/,
      ],
      [{ tools: [{ type: "function", function: { name: "bad name" } }] }, "tools.0.function.name", /function name/],
      [{ messages: [{ role: "tool", content: "x" }] }, "messages.0.tool_call_id", /tool_call_id/],
      [
        {
          tools: TOOLS,
          tool_choice: "required",
          response_format: { type: "json_object" },
        },
        "response_format",
        /tool_choice/,
      ],
    ];
    for (const [extra, param, message] of cases) {
      await assert.rejects(
        client.chat.completions.create({ model: STORIES, messages: ASK, ...extra } as never),
        (error: unknown) => {
          assert.ok(error instanceof OpenAI.BadRequestError, `${param}: ${String(error)}`);
          assert.equal(error.param, param);
          assert.match(error.message, message);
          return true;
        },
      );
    }
  });
});
