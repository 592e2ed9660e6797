import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Ajv } from "ajv";
import OpenAI from "openai";
import type { FunctionTool, ResponseStreamEvent } from "openai/resources/responses/responses";
import { API_KEY, STORIES, startStack, type OpenAIStack } from "./harness.js";

const WEATHER = {
  type: "object",
  properties: {
    city: { type: "string", minLength: 1, maxLength: 20 },
    unit: { type: "string", enum: ["celsius", "fahrenheit"] },
  },
  required: ["city", "unit"],
  additionalProperties: false,
};
const TOOLS: FunctionTool[] = [
  { type: "function", name: "get_weather", description: "Weather in a city", parameters: WEATHER, strict: true },
];
const PERSON = {
  type: "object",
  properties: {
    name: { type: "string", minLength: 1, maxLength: 12 },
    age: { type: "integer", minimum: 0, maximum: 120 },
    pets: { type: "array", items: { type: "string", maxLength: 8 }, maxItems: 3 },
  },
  required: ["name", "age", "pets"],
  additionalProperties: false,
};

describe("/v1/responses through the openai client, on a real scheduler and worker", () => {
  let stack: OpenAIStack;
  let client: OpenAI;
  const ajv = new Ajv({ strict: false });

  before(async () => {
    stack = await startStack();
    client = stack.client();
  });

  after(async () => {
    await stack?.close();
  });

  test("responses.create: a string input with instructions runs as the chat job of the same messages", async () => {
    const { data, response } = await client.responses
      .create({
        model: STORIES,
        instructions: "You tell short stories.",
        input: "Once upon a time",
        max_output_tokens: 20,
        temperature: 0,
        metadata: { team: "lab" },
      })
      .withResponse();
    assert.match(data.id, /^resp_[A-Za-z0-9_-]+$/);
    assert.equal(data.object, "response");
    assert.equal(data.model, STORIES);
    assert.equal((data as unknown as { store: boolean }).store, false);
    assert.equal(data.previous_response_id, null);
    assert.equal(data.instructions, "You tell short stories.");
    assert.equal(data.max_output_tokens, 20);
    assert.deepEqual(data.metadata, { team: "lab" });
    assert.equal(data.output.length, 1);
    const message = data.output[0]!;
    assert.equal(message.type, "message");
    if (message.type !== "message") return;
    assert.match(message.id, /^msg_/);
    assert.equal(message.role, "assistant");
    const part = message.content[0]!;
    assert.equal(part.type, "output_text");
    if (part.type !== "output_text") return;
    assert.ok(part.text.length > 0);
    assert.equal(data.output_text, part.text, "the client's output_text joins the text parts");
    const usage = data.usage!;
    assert.equal(usage.total_tokens, usage.input_tokens + usage.output_tokens);
    // 20 tokens of a story: cut by max_output_tokens, so incomplete (as OpenAI reports it).
    assert.equal(usage.output_tokens, 20);
    assert.equal(data.status, "incomplete");
    assert.deepEqual(data.incomplete_details, { reason: "max_output_tokens" });
    assert.equal(message.status, "incomplete");

    const jobId = response.headers.get("x-corral-job-id")!;
    const record = await stack.job(jobId);
    assert.equal(record.source, "openai");
    assert.deepEqual(record.metadata, { team: "lab" }, "metadata is kept on the job");

    const chat = await client.chat.completions.create({
      model: STORIES,
      messages: [
        { role: "system", content: "You tell short stories." },
        { role: "user", content: "Once upon a time" },
      ],
      max_tokens: 20,
      temperature: 0,
    });
    assert.equal(part.text, chat.choices[0]!.message.content, "the same text as the chat route");
    assert.equal(usage.input_tokens, chat.usage!.prompt_tokens);
  });

  test("without max_output_tokens (or chat's max_tokens) a reply may run until the context is full", async () => {
    const data = await client.responses.create({ model: STORIES, input: "Hi", temperature: 0 });
    assert.equal(data.status, "incomplete");
    assert.equal(data.usage!.total_tokens, 1023, "the harness's context of 1024, one kept free");
    const chat = await client.chat.completions.create({
      model: STORIES,
      messages: [{ role: "user", content: "Describe a person." }],
      response_format: { type: "json_schema", json_schema: { name: "person", schema: PERSON } },
      temperature: 0,
    });
    assert.equal(chat.choices[0]!.finish_reason, "stop");
  });

  test("input as message items: input_text parts, developer and assistant turns, as the chat messages they are", async () => {
    const data = await client.responses.create({
      model: STORIES,
      input: [
        { role: "developer", content: "Be kind." },
        { type: "message", role: "user", content: [{ type: "input_text", text: "Tell me about Lily." }] },
        { role: "assistant", content: [{ type: "output_text", text: "Lily had a dog.", annotations: [] }] } as never,
        { role: "user", content: [{ type: "input_text", text: "And then?" }] },
      ],
      max_output_tokens: 12,
      temperature: 0,
    });
    const chat = await client.chat.completions.create({
      model: STORIES,
      messages: [
        { role: "system", content: "Be kind." },
        { role: "user", content: "Tell me about Lily." },
        { role: "assistant", content: "Lily had a dog." },
        { role: "user", content: "And then?" },
      ],
      max_tokens: 12,
      temperature: 0,
    });
    assert.equal(data.output_text, chat.choices[0]!.message.content);
    assert.equal(data.usage!.input_tokens, chat.usage!.prompt_tokens);
  });

  test("responses.stream: response.* events in order, deltas spell the text, the final response matches create", async () => {
    const params = { model: STORIES, input: "Once upon a time", max_output_tokens: 24, temperature: 0 } as const;
    const stream = client.responses.stream(params);
    const events: ResponseStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    const final = await stream.finalResponse();
    const types = events.map((e) => e.type);
    const deltas = events.filter((e) => e.type === "response.output_text.delta");
    assert.ok(deltas.length > 1, "the text comes token by token");
    assert.deepEqual(
      types.filter((t) => t !== "response.output_text.delta"),
      [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.incomplete",
      ],
    );
    assert.deepEqual(
      events.map((e) => e.sequence_number),
      events.map((_, i) => i),
      "numbered from 0",
    );
    const text = deltas.map((e) => (e.type === "response.output_text.delta" ? e.delta : "")).join("");
    const done = events.find((e) => e.type === "response.output_text.done");
    assert.equal(done?.type === "response.output_text.done" && done.text, text);
    assert.equal(final.output_text, text);
    assert.equal(final.usage!.output_tokens, 24);
    const created = events[0]!;
    assert.equal(created.type === "response.created" && created.response.status, "in_progress");
    assert.equal(final.id, created.type === "response.created" && created.response.id);

    const whole = await client.responses.create(params);
    assert.equal(whole.output_text, text, "the same text as without streaming");
  });

  test("text.format json_schema: the output is JSON valid for the schema, streamed or not; json_object too", async () => {
    const validate = ajv.compile(PERSON);
    const format = { type: "json_schema" as const, name: "person", schema: PERSON, strict: true };
    for (const seed of [0, 1]) {
      const data = await client.responses.create({
        model: STORIES,
        input: "Describe a person.",
        text: { format },
        temperature: seed,
        max_output_tokens: 300,
      });
      assert.equal(data.status, "completed");
      assert.ok(validate(JSON.parse(data.output_text)), `${data.output_text}: ${JSON.stringify(validate.errors)}`);
      assert.deepEqual(data.text?.format, format);
    }
    const stream = client.responses.stream({
      model: STORIES,
      input: "Describe a person.",
      text: { format },
      temperature: 0,
      max_output_tokens: 300,
    });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    assert.equal(types.at(-1), "response.completed", "a reply that ends by itself completes");
    const final = await stream.finalResponse();
    assert.equal(final.status, "completed");
    assert.ok(validate(JSON.parse(final.output_text)));
    const object = await client.responses.create({
      model: STORIES,
      input: "Some JSON please.",
      text: { format: { type: "json_object" } },
      temperature: 0,
      max_output_tokens: 40,
    });
    // stories260K fills a free-form object's first string until the limit; the grammar made it an object.
    assert.match(object.output_text, /^\s*\{\s*"/);
    if (object.status === "completed") assert.equal(typeof JSON.parse(object.output_text), "object");
  });

  test("tools with tool_choice required: function_call items valid for their parameters; results go back as input items", async () => {
    const validate = ajv.compile(WEATHER);
    const data = await client.responses.create({
      model: STORIES,
      input: "What is the weather in Paris?",
      tools: TOOLS,
      tool_choice: "required",
      parallel_tool_calls: false,
      temperature: 1,
      max_output_tokens: 300,
    });
    assert.equal(data.status, "completed");
    assert.equal(data.output.length, 1);
    const call = data.output[0]!;
    assert.equal(call.type, "function_call");
    if (call.type !== "function_call") return;
    assert.match(call.id!, /^fc_/);
    assert.match(call.call_id, /^call_/);
    assert.equal(call.name, "get_weather");
    assert.ok(validate(JSON.parse(call.arguments)), call.arguments);
    assert.equal(data.output_text, "");
    assert.deepEqual(data.tools, TOOLS);
    assert.equal(data.tool_choice, "required");

    // The call and its result, sent back statelessly: the model answers with a message.
    const answer = await client.responses.create({
      model: STORIES,
      input: [
        { role: "user", content: "What is the weather in Paris?" },
        { type: "function_call", call_id: call.call_id, name: call.name, arguments: call.arguments },
        { type: "function_call_output", call_id: call.call_id, output: "Sunny, 21 degrees." },
      ],
      tools: TOOLS,
      tool_choice: "none",
      temperature: 0,
      max_output_tokens: 16,
    });
    assert.equal(answer.output[0]!.type, "message");
    assert.ok(answer.output_text.length > 0);
    const withoutResult = await client.responses.create({
      model: STORIES,
      input: [
        { role: "user", content: "What is the weather in Paris?" },
        { type: "function_call", call_id: call.call_id, name: call.name, arguments: call.arguments },
      ],
      tools: TOOLS,
      tool_choice: "none",
      temperature: 0,
      max_output_tokens: 1,
    });
    assert.ok(answer.usage!.input_tokens > withoutResult.usage!.input_tokens, "the result is in the prompt");
  });

  test("a streamed forced call: output_item.added with its name, its arguments token by token, then done and response.completed", async () => {
    const stream = client.responses.stream({
      model: STORIES,
      input: "What is the weather in Paris?",
      tools: TOOLS,
      tool_choice: { type: "function", name: "get_weather" },
      temperature: 0,
      max_output_tokens: 300,
    });
    const types: string[] = [];
    let args = "";
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "response.function_call_arguments.delta") args += event.delta;
    }
    const deltas = types.filter((t) => t === "response.function_call_arguments.delta").length;
    assert.ok(deltas > 3, `the arguments come in pieces (${deltas} deltas)`);
    assert.deepEqual(
      types.filter((t) => t !== "response.function_call_arguments.delta"),
      [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
      ],
    );
    const final = await stream.finalResponse();
    assert.equal(final.output.length, 1, "a named function is called once");
    const call = final.output[0]!;
    assert.equal(call.type, "function_call");
    if (call.type !== "function_call") return;
    assert.equal(call.name, "get_weather");
    assert.match(call.call_id, /^call_/);
    assert.equal(call.arguments, args);
    assert.ok(ajv.compile(WEATHER)(JSON.parse(args)));
    const whole = await client.responses.create({
      model: STORIES,
      input: "What is the weather in Paris?",
      tools: TOOLS,
      tool_choice: { type: "function", name: "get_weather" },
      temperature: 0,
      max_output_tokens: 300,
    });
    const wholeCall = whole.output[0]!;
    assert.deepEqual(
      wholeCall.type === "function_call" && JSON.parse(wholeCall.arguments),
      JSON.parse(args),
      "the same call as without streaming",
    );
  });

  test("a streamed reply with tool_choice auto that is not a call is one message, sent when complete", async () => {
    const params = {
      model: STORIES,
      input: "Once upon a time",
      tools: TOOLS,
      temperature: 0,
      max_output_tokens: 16,
    } as const;
    const stream = client.responses.stream(params);
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    assert.deepEqual(types, [
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.incomplete",
    ]);
    const final = await stream.finalResponse();
    assert.equal(final.output_text, (await client.responses.create(params)).output_text);
    assert.equal(final.tool_choice, "auto");
  });

  test("include message.output_text.logprobs: one entry per output token, with top_logprobs alternatives", async () => {
    const data = await client.responses.create({
      model: STORIES,
      input: "Once upon a time",
      include: ["message.output_text.logprobs"],
      top_logprobs: 3,
      temperature: 0,
      max_output_tokens: 10,
    });
    const message = data.output[0]!;
    const part = message.type === "message" ? message.content[0] : undefined;
    assert.ok(part?.type === "output_text");
    const logprobs = part.logprobs!;
    assert.equal(logprobs.length, data.usage!.output_tokens);
    assert.equal(logprobs.map((l) => l.token).join(""), part.text);
    for (const entry of logprobs) {
      assert.ok(entry.logprob <= 0);
      assert.equal(entry.top_logprobs.length, 3);
      assert.equal(entry.top_logprobs[0]!.token, entry.token, "greedy: the chosen token is the likeliest");
    }
  });

  test("a client that leaves a stream cancels its job", async () => {
    const { data: stream, response } = await client.responses
      .create({ model: STORIES, input: "Once upon a time", max_output_tokens: 900, temperature: 1, stream: true })
      .withResponse();
    const jobId = response.headers.get("x-corral-job-id")!;
    for await (const event of stream) {
      if (event.type === "response.output_text.delta") break;
    }
    const record = await stack.waitForJob(jobId);
    assert.equal(record.status, "cancelled");
  });

  test("a job cancelled with DELETE /v1/jobs/:id mid-stream ends the stream with error and response.failed", async () => {
    const { data: stream, response } = await client.responses
      .create({ model: STORIES, input: "Once upon a time", max_output_tokens: 900, temperature: 0, stream: true })
      .withResponse();
    const jobId = response.headers.get("x-corral-job-id")!;
    const events: ResponseStreamEvent[] = [];
    for await (const event of stream) {
      events.push(event);
      if (event.type !== "response.output_text.delta" || events.length > 5) continue;
      const cancel = await fetch(`${stack.baseURL}/jobs/${jobId}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${API_KEY}` },
      });
      assert.equal(cancel.status, 200);
    }
    const [error, failed] = events.slice(-2);
    assert.equal(error?.type, "error");
    assert.equal(error?.type === "error" && error.code, "job_cancelled");
    assert.equal(failed?.type, "response.failed");
    if (failed?.type !== "response.failed") return;
    assert.equal(failed.response.status, "failed");
    assert.equal(failed.response.error?.code, "job_cancelled");
    assert.equal((await stack.waitForJob(jobId)).status, "cancelled");
  });

  test("stateful and unsupported fields are 400s naming the field; a missing key is a 401", async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ store: true }, "store", /stateless/],
      [{ previous_response_id: "resp_123" }, "previous_response_id", /stateless/],
      [{ conversation: "conv_1" }, "conversation", /stateless/],
      [{ background: true }, "background", /Background/],
      [{ input: [{ type: "item_reference", id: "msg_1" }] }, "input.0.type", /item_reference/],
      [
        { input: [{ role: "user", content: [{ type: "input_image", image_url: "http://x/y.png" }] }] },
        "input.0.content.0.type",
        /input_image/,
      ],
      [{ tools: [{ type: "web_search" }] }, "tools.0.type", /web_search/],
      [{ tools: TOOLS, tool_choice: { type: "function", name: "fly" } }, "tool_choice", /fly/],
      [{ tool_choice: "required" }, "tool_choice", /needs `tools`/],
      [
        { text: { format: { type: "json_schema", name: "x", schema: { type: "object", not: {} } } } },
        "text.format.schema",
        /text\.format\.schema/,
      ],
      [{ include: ["file_search_call.results"] }, "include.0", /logprobs/],
      [{ max_output_tokens: 0 }, "max_output_tokens", /max_output_tokens/],
      [{ reasoning: { effort: "max" } }, "reasoning.effort", /reasoning\.effort/],
      [{ reasoning: { context: "all_turns" } }, "reasoning.context", /current_turn/],
      [{ truncation: "auto" }, "truncation", /truncation/],
      [{ input: [{ type: "function_call_output", output: "x" }] }, "input.0.call_id", /call_id/],
    ];
    for (const [extra, param, message] of cases) {
      await assert.rejects(
        client.responses.create({ model: STORIES, input: "Hi", ...extra } as never),
        (error: unknown) => {
          assert.ok(error instanceof OpenAI.BadRequestError, `${param}: ${String(error)}`);
          assert.equal(error.param, param);
          assert.match(error.message, message);
          return true;
        },
      );
    }
    await assert.rejects(
      stack.client({ apiKey: "sk-wrong" }).responses.create({ model: STORIES, input: "Hi" }),
      OpenAI.AuthenticationError,
    );
  });
});
