import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidRequestError, ModelNotFoundError, type BatchLineResult, type JobResult } from "@corral/shared";
import { checkLine, faultResult, outputLine, parseLineBody, type ReplyShape } from "./batch-lines.js";

const result = (text: string, extra: Partial<JobResult> = {}): JobResult => ({
  text,
  finish_reason: "length",
  usage: { prompt_tokens: 3, completion_tokens: 2 },
  timings: { queue_ms: 1, load_ms: 0, ttft_ms: 1, generation_ms: 1 },
  ...extra,
});

const succeeded = (r: JobResult): BatchLineResult => ({
  job_id: "batch_x_1",
  status: "succeeded",
  model: "stories260K",
  finished_at: 1_700_000_000_500,
  result: r,
  error: null,
});

const chatShape: ReplyShape = { kind: "chat", echo: null, encoding: "float", inputs: 0 };

test("checkLine accepts a request for the endpoint and names what is wrong otherwise", () => {
  const ok = checkLine('{"custom_id":"a","method":"POST","url":"/v1/completions","body":{}}', 1, "/v1/completions");
  assert.deepEqual(ok, { ok: true, request: { custom_id: "a", body: {} } });
  const wrong = checkLine('{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{}}', 9, "/v1/completions");
  assert.equal(wrong.ok, false);
  if (!wrong.ok) {
    assert.equal(wrong.error.line, 9);
    assert.equal(wrong.error.code, "mismatched_url");
    assert.match(wrong.error.message, /^Line 9: /);
  }
});

test("a chat reply is OpenAI's chat.completion, with an id derived from the job (stable across finalize attempts)", () => {
  const args = {
    id: "batch_req_x_1",
    customId: "c1",
    shape: chatShape,
    result: succeeded(result("Hi")),
    closing: "completed",
  } as const;
  const { ok, line } = outputLine(args);
  assert.equal(ok, true);
  assert.equal(line.error, null);
  assert.equal(line.response?.status_code, 200);
  assert.equal(line.response?.request_id, "batch_x_1");
  const body = line.response?.body as Record<string, unknown>;
  assert.match(String(body.id), /^chatcmpl-[A-Za-z0-9_-]{24}$/);
  assert.deepEqual(
    { ...body, id: "x" },
    {
      id: "x",
      object: "chat.completion",
      created: 1_700_000_000,
      model: "stories260K",
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: "Hi", refusal: null },
          logprobs: null,
          finish_reason: "length",
        },
      ],
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
    },
  );
  assert.deepEqual(outputLine(args).line, line);
});

test("completions echo the prompt when asked; embeddings check the vector count", () => {
  const parsed = parseLineBody("/v1/completions", { model: "m", prompt: "Once", echo: true, max_tokens: 4 });
  assert.equal(parsed.shape.echo, "Once");
  const completion = outputLine({
    id: "r",
    customId: "c",
    shape: parsed.shape,
    result: succeeded(result(" upon")),
    closing: "completed",
  });
  assert.equal((completion.line.response?.body as { choices: { text: string }[] }).choices[0]!.text, "Once upon");

  const shape: ReplyShape = { kind: "embedding", echo: null, encoding: "float", inputs: 2 };
  const good = outputLine({
    id: "r",
    customId: "e",
    shape,
    result: succeeded(result("", { embeddings: [[1], [2]] })),
    closing: "completed",
  });
  assert.equal(good.ok, true);
  assert.equal((good.line.response?.body as { object: string }).object, "list");
  const short = outputLine({
    id: "r",
    customId: "e",
    shape,
    result: succeeded(result("", { embeddings: [[1]] })),
    closing: "completed",
  });
  assert.equal(short.ok, false);
  assert.equal(short.line.response?.status_code, 500);
  assert.equal(short.line.error?.code, "embeddings_missing");
});

test("per-line faults keep the online status, type, param and code", () => {
  const notFound = outputLine({
    id: "r",
    customId: "m",
    shape: null,
    result: faultResult(new ModelNotFoundError("nope", ["stories260K"])),
    closing: "completed",
  });
  assert.equal(notFound.ok, false);
  assert.equal(notFound.line.response?.status_code, 404);
  assert.deepEqual(notFound.line.response?.body, {
    error: {
      message: notFound.line.error?.message,
      type: "invalid_request_error",
      param: "model",
      code: "model_not_found",
    },
  });
  const tooLong = outputLine({
    id: "r",
    customId: "t",
    shape: null,
    result: faultResult(new InvalidRequestError("too long", "max_tokens", "context_length_exceeded")),
    closing: "completed",
  });
  assert.equal(tooLong.line.response?.status_code, 400);
  assert.deepEqual(tooLong.line.error, { code: "context_length_exceeded", message: "too long" });
});

test("a failed job maps like the online endpoint; cancelled or missing lines say why the batch ended", () => {
  const failed = outputLine({
    id: "r",
    customId: "f",
    shape: chatShape,
    result: {
      ...succeeded(result("")),
      status: "failed",
      result: null,
      error: { message: "boom", code: "worker_error" },
    },
    closing: "completed",
  });
  assert.equal(failed.ok, false);
  assert.equal(failed.line.response?.status_code, 500);
  assert.equal(failed.line.error?.code, "worker_error");
  const cancelled = outputLine({
    id: "r",
    customId: "x",
    shape: chatShape,
    result: { ...succeeded(result("partial")), status: "cancelled" },
    closing: "cancelled",
  });
  assert.deepEqual(cancelled, {
    ok: false,
    line: {
      id: "r",
      custom_id: "x",
      response: null,
      error: { code: "batch_cancelled", message: "This request was not run: the batch was cancelled." },
    },
  });
  const expired = outputLine({ id: "r", customId: "y", shape: chatShape, result: null, closing: "expired" });
  assert.equal(expired.line.error?.code, "batch_expired");
});

test("n > 1 and prompt arrays are refused per line; stream is ignored", () => {
  assert.throws(
    () => parseLineBody("/v1/chat/completions", { model: "m", messages: [{ role: "user", content: "x" }], n: 2 }),
    {
      param: "n",
    },
  );
  assert.throws(() => parseLineBody("/v1/completions", { model: "m", prompt: ["a", "b"] }), { param: "prompt" });
  const streamed = parseLineBody("/v1/chat/completions", {
    model: "m",
    messages: [{ role: "user", content: "x" }],
    stream: true,
    stream_options: { include_usage: true },
  });
  assert.equal(streamed.model, "m");
});

test("penalties, logit_bias and logprobs reach a line's job; its reply carries the logprobs; best_of > 1 is refused", () => {
  const parsed = parseLineBody("/v1/chat/completions", {
    model: "m",
    messages: [{ role: "user", content: "Hi" }],
    frequency_penalty: 0.5,
    presence_penalty: 0.25,
    logit_bias: { "7": -100 },
    logprobs: true,
    top_logprobs: 2,
  });
  const catalogModel = { id: "m", context_size: 512 } as Parameters<typeof parsed.build>[0];
  const input = parsed.build(catalogModel);
  assert.equal(input.frequency_penalty, 0.5);
  assert.equal(input.presence_penalty, 0.25);
  assert.deepEqual(input.logit_bias, { "7": -100 });
  assert.equal(input.logprobs, true);
  assert.equal(input.top_logprobs, 2);

  const token = { token: "Hi", bytes: [72, 105], logprob: -0.5, top_logprobs: [] };
  const { line } = outputLine({
    id: "r",
    customId: "c",
    shape: parsed.shape,
    result: succeeded(result("Hi", { logprobs: [token] })),
    closing: "completed",
  });
  const body = line.response?.body as { choices: { logprobs: unknown }[] };
  assert.deepEqual(body.choices[0]!.logprobs, {
    content: [{ token: "Hi", logprob: -0.5, bytes: [72, 105], top_logprobs: [] }],
    refusal: null,
  });

  assert.throws(
    () => parseLineBody("/v1/completions", { model: "m", prompt: "x", best_of: 2 }),
    (error: unknown) => error instanceof InvalidRequestError && error.param === "best_of",
  );
});

test("a chat line with tools carries them to its job, and its output line carries the calls the job made", () => {
  const parsed = parseLineBody("/v1/chat/completions", {
    model: "m",
    messages: [{ role: "user", content: "Hi" }],
    tools: [{ type: "function", function: { name: "greet", parameters: { type: "object", properties: {} } } }],
    tool_choice: "required",
  });
  const input = parsed.build({ id: "m", context_size: 512 } as Parameters<typeof parsed.build>[0]);
  assert.deepEqual(input.tools, {
    functions: [{ name: "greet", parameters: { type: "object", properties: {} } }],
    required: true,
    max_calls: 8,
  });
  assert.deepEqual(input.messages, [{ role: "user", content: "Hi" }], "the worker renders the tools for its model");
  const { line } = outputLine({
    id: "r",
    customId: "c",
    shape: parsed.shape,
    result: succeeded(
      result("", { finish_reason: "stop", tool_calls: [{ id: "call_1", name: "greet", arguments: "{}" }] }),
    ),
    closing: "completed",
  });
  const body = line.response?.body as {
    choices: { message: { content: unknown; tool_calls: { function: unknown }[] }; finish_reason: string }[];
  };
  assert.equal(body.choices[0]!.finish_reason, "tool_calls");
  assert.equal(body.choices[0]!.message.content, null);
  assert.deepEqual(body.choices[0]!.message.tool_calls[0]!.function, { name: "greet", arguments: "{}" });
});

test("a chat line run on a reasoning model carries its thoughts and reasoning tokens, as the chat endpoint does", () => {
  const r = result("The answer.", {
    finish_reason: "stop",
    usage: { prompt_tokens: 3, completion_tokens: 9, reasoning_tokens: 6 },
    reasoning: "Let me think.",
  });
  const { ok, line } = outputLine({
    id: "batch_req_1",
    customId: "r",
    shape: chatShape,
    result: succeeded(r),
    closing: "completed",
  });
  assert.equal(ok, true);
  const body = line.response?.body as {
    choices: { message: Record<string, unknown> }[];
    usage: Record<string, unknown>;
  };
  assert.deepEqual(body.choices[0]!.message, {
    role: "assistant",
    content: "The answer.",
    reasoning_content: "Let me think.",
    refusal: null,
  });
  assert.deepEqual(body.usage, {
    prompt_tokens: 3,
    completion_tokens: 9,
    total_tokens: 12,
    completion_tokens_details: { reasoning_tokens: 6 },
  });
});
