import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { InvalidRequestError } from "@corral/shared";
import { UnsupportedFeatureError } from "./errors.js";
import { foldSeed } from "./job-inputs.js";
import { parseChatRequest, parseCompletionRequest, parseEmbeddingRequest } from "./schemas.js";
import { embeddingList, sumUsage, toBase64Float32 } from "./responses.js";

const chat = (extra: Record<string, unknown> = {}) => ({
  model: "m",
  messages: [{ role: "user", content: "hi" }],
  ...extra,
});

/** Asserts `fn` throws a 400 with this param (and code, when given). */
function rejects400(fn: () => unknown, param: string, code?: string): InvalidRequestError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof InvalidRequestError, String(error));
    assert.equal(error.status, 400);
    assert.equal(error.param, param, error.message);
    if (code) assert.equal(error.code, code);
    return error;
  }
  assert.fail(`expected a 400 on ${param}`);
}

describe("parseChatRequest", () => {
  test("reasoning_effort maps to its thought budget; max_reasoning_tokens sets one; not both", () => {
    assert.equal(parseChatRequest(chat({ reasoning_effort: "low" })).sampling.reasoning_budget, 1024);
    assert.equal(parseChatRequest(chat({ reasoning_effort: "medium" })).sampling.reasoning_budget, 4096);
    assert.equal(parseChatRequest(chat({ reasoning_effort: "none" })).sampling.reasoning_budget, 0);
    assert.equal(parseChatRequest(chat({ max_reasoning_tokens: 77 })).sampling.reasoning_budget, 77);
    assert.equal("reasoning_budget" in parseChatRequest(chat({ reasoning_effort: null })).sampling, false);
    rejects400(() => parseChatRequest(chat({ reasoning_effort: "max" })), "reasoning_effort");
    rejects400(() => parseChatRequest(chat({ max_reasoning_tokens: -1 })), "max_reasoning_tokens");
    rejects400(
      () => parseChatRequest(chat({ reasoning_effort: "high", max_reasoning_tokens: 5 })),
      "max_reasoning_tokens",
    );
  });

  test("maps OpenAI's fields, with OpenAI's defaults", () => {
    const request = parseChatRequest(chat());
    assert.deepEqual(request, {
      model: "m",
      n: 1,
      stream: false,
      includeUsage: false,
      sampling: { temperature: 1 },
      messages: [{ role: "user", content: "hi" }],
      tools: null,
    });
    const full = parseChatRequest(
      chat({
        max_tokens: 10,
        max_completion_tokens: 20,
        temperature: 0,
        top_p: 0.9,
        top_k: 40,
        seed: -1,
        stop: "END",
        n: 2,
        user: "u1",
        stream: true,
        stream_options: { include_usage: true },
        response_format: { type: "json_object" },
      }),
    );
    assert.deepEqual(full.sampling, {
      max_tokens: 20,
      temperature: 0,
      top_p: 0.9,
      top_k: 40,
      seed: -1,
      stop: ["END"],
      response_format: { type: "json_object" },
    });
    assert.equal(full.n, 2);
    assert.equal(full.includeUsage, true);
    assert.equal(full.user, "u1");
  });

  test("ignores unknown fields and takes null as unset", () => {
    const request = parseChatRequest(
      chat({ some_new_field: 1, store: true, metadata: { a: "b" }, temperature: null, stop: null, tools: null }),
    );
    assert.equal(request.sampling.temperature, 1);
    assert.equal(request.sampling.stop, undefined);
  });

  test("joins text parts, maps developer to system, drops a text response_format", () => {
    const request = parseChatRequest(
      chat({
        messages: [
          { role: "developer", content: "be brief" },
          {
            role: "user",
            content: [
              { type: "text", text: "one" },
              { type: "text", text: "two" },
            ],
          },
          { role: "assistant", content: "ok", name: "bot" },
        ],
        response_format: { type: "text" },
      }),
    );
    assert.deepEqual(request.messages, [
      { role: "system", content: "be brief" },
      { role: "user", content: "one\ntwo" },
      { role: "assistant", content: "ok" },
    ]);
    assert.equal(request.sampling.response_format, undefined);
  });

  test("known fields of the wrong type are 400s naming the field", () => {
    rejects400(() => parseChatRequest(chat({ temperature: "1" })), "temperature");
    rejects400(() => parseChatRequest(chat({ temperature: 3 })), "temperature");
    rejects400(() => parseChatRequest(chat({ n: 0 })), "n");
    rejects400(() => parseChatRequest(chat({ n: 9 })), "n");
    rejects400(() => parseChatRequest(chat({ stream: "yes" })), "stream");
    rejects400(() => parseChatRequest(chat({ stop: [1] })), "stop");
    rejects400(() => parseChatRequest(chat({ messages: [] })), "messages");
    rejects400(() => parseChatRequest(chat({ messages: [{ role: "robot", content: "x" }] })), "messages.0.role");
    rejects400(() => parseChatRequest(chat({ messages: [{ role: "user" }] })), "messages.0.content");
    rejects400(
      () => parseChatRequest(chat({ messages: [{ role: "user", content: [{ type: "text" }] }] })),
      "messages.0.content.0.text",
    );
    rejects400(() => parseChatRequest({ messages: [{ role: "user", content: "x" }] }), "model");
    rejects400(() => parseChatRequest(chat({ response_format: { type: "xml" } })), "response_format.type");
    rejects400(() => parseChatRequest(chat({ stream_options: { include_usage: true } })), "stream_options");
  });

  test("features Corral cannot honour are 400s saying so", () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ functions: [{ name: "f" }] }, "functions"],
      [{ function_call: { name: "f" } }, "function_call"],
      [{ audio: { voice: "x" } }, "audio"],
      [{ modalities: ["text", "audio"] }, "modalities"],
      [{ messages: [{ role: "function", content: "x", name: "f" }] }, "messages.0.role"],
      [
        { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "u" } }] }] },
        "messages.0.content.0",
      ],
    ];
    for (const [extra, param] of cases) {
      const error = rejects400(() => parseChatRequest(chat(extra)), param);
      assert.ok(error instanceof UnsupportedFeatureError, param);
      assert.match(error.message, /not supported|Only/);
    }
    // Their "off" values are fine.
    parseChatRequest(
      chat({
        tools: [],
        tool_choice: "none",
        logprobs: false,
        logit_bias: {},
        frequency_penalty: 0,
        presence_penalty: 0,
      }),
    );
  });

  test("tools: the job's tools per tool_choice; calls and results in messages are carried as such", () => {
    const tools = [{ type: "function", function: { name: "f", parameters: { type: "object", properties: {} } } }];
    assert.equal(parseChatRequest(chat({ tools })).tools?.required, false);
    assert.equal(parseChatRequest(chat({ tools, tool_choice: "none" })).tools, null);
    const named = parseChatRequest(chat({ tools, tool_choice: { type: "function", function: { name: "f" } } }));
    assert.deepEqual([named.tools?.required, named.tools?.only], [true, "f"]);
    assert.equal(named.tools?.max_calls, 1, "a named function is called exactly once");
    assert.equal(parseChatRequest(chat({ tools, tool_choice: "required" })).tools?.max_calls, 8);
    assert.equal(
      parseChatRequest(chat({ tools, tool_choice: "required", parallel_tool_calls: false })).tools?.max_calls,
      1,
    );
    const request = parseChatRequest(
      chat({
        tools,
        messages: [
          { role: "user", content: "hi" },
          {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "call_1", type: "function", function: { name: "f", arguments: '{"x":1}' } }],
          },
          { role: "tool", tool_call_id: "call_1", content: "done" },
        ],
      }),
    );
    assert.deepEqual(request.messages.slice(1), [
      { role: "assistant", content: "", tool_calls: [{ id: "call_1", name: "f", arguments: '{"x":1}' }] },
      { role: "tool", content: "done", tool_call_id: "call_1", name: "f" },
    ]);
    // Tools whose joined call grammar is over the schema limits are refused as `tools`.
    const many = Array.from({ length: 3 }, (_, i) => ({
      type: "function",
      function: {
        name: `f${i}`,
        parameters: { type: "object", properties: { x: { enum: Array.from({ length: 400 }, (_, j) => `v${j}`) } } },
      },
    }));
    const big = rejects400(() => parseChatRequest(chat({ tools: many, tool_choice: "required" })), "tools");
    assert.match(big.message, /alternatives/);
    parseChatRequest(chat({ tools: many }));
    rejects400(
      () =>
        parseChatRequest(
          chat({
            messages: [
              {
                role: "assistant",
                tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{" } }],
              },
            ],
          }),
        ),
      "messages.0.tool_calls.0.function.arguments",
    );
  });

  test("penalties, logit_bias and logprobs reach the sampling; off values are left out", () => {
    const request = parseChatRequest(
      chat({
        frequency_penalty: 0.5,
        presence_penalty: -1,
        logit_bias: { "1": 5, "300": -100 },
        logprobs: true,
        top_logprobs: 3,
      }),
    );
    assert.equal(request.sampling.frequency_penalty, 0.5);
    assert.equal(request.sampling.presence_penalty, -1);
    assert.deepEqual(request.sampling.logit_bias, { "1": 5, "300": -100 });
    assert.equal(request.sampling.logprobs, 3);
    assert.equal(parseChatRequest(chat({ logprobs: true })).sampling.logprobs, 0);
    const off = parseChatRequest(chat({ logprobs: false, logit_bias: {}, frequency_penalty: 0, presence_penalty: 0 }));
    for (const field of ["logprobs", "logit_bias", "frequency_penalty", "presence_penalty"] as const) {
      assert.equal(off.sampling[field], undefined, field);
    }
  });

  test("out-of-range penalties, logit_bias and top_logprobs are 400s naming the field", () => {
    rejects400(() => parseChatRequest(chat({ frequency_penalty: 2.5 })), "frequency_penalty");
    rejects400(() => parseChatRequest(chat({ presence_penalty: -2.01 })), "presence_penalty");
    rejects400(() => parseChatRequest(chat({ frequency_penalty: "high" })), "frequency_penalty");
    rejects400(() => parseChatRequest(chat({ logit_bias: { "1": 101 } })), "logit_bias.1");
    rejects400(() => parseChatRequest(chat({ logit_bias: { "1": -100.5 } })), "logit_bias.1");
    const key = rejects400(() => parseChatRequest(chat({ logit_bias: { hello: 1 } })), "logit_bias.hello");
    assert.match(key.message, /token ids/);
    rejects400(() => parseChatRequest(chat({ logit_bias: { "-1": 1 } })), "logit_bias.-1");
    const many = Object.fromEntries(Array.from({ length: 1025 }, (_, i) => [String(i), 1]));
    rejects400(() => parseChatRequest(chat({ logit_bias: many })), "logit_bias");
    rejects400(() => parseChatRequest(chat({ logprobs: true, top_logprobs: 21 })), "top_logprobs");
    rejects400(() => parseChatRequest(chat({ logprobs: true, top_logprobs: -1 })), "top_logprobs");
    rejects400(() => parseChatRequest(chat({ top_logprobs: 2 })), "top_logprobs");
  });
});

describe("parseCompletionRequest", () => {
  test("a prompt or an array of prompts; echo; best_of equal to n", () => {
    assert.deepEqual(parseCompletionRequest({ model: "m", prompt: "a" }).prompts, ["a"]);
    const request = parseCompletionRequest({ model: "m", prompt: ["a", "b"], n: 2, best_of: 2, echo: true });
    assert.deepEqual(request.prompts, ["a", "b"]);
    assert.equal(request.echo, true);
    assert.equal(request.sampling.max_tokens, undefined);
  });

  test("token prompts, suffix and logprobs with echo are unsupported; too many choices are refused", () => {
    rejects400(() => parseCompletionRequest({ model: "m", prompt: [1, 2, 3] }), "prompt.0", "unsupported_value");
    rejects400(() => parseCompletionRequest({ model: "m", prompt: [[1, 2]] }), "prompt.0", "unsupported_value");
    rejects400(() => parseCompletionRequest({ model: "m", prompt: "a", suffix: "z" }), "suffix");
    rejects400(() => parseCompletionRequest({ model: "m", prompt: "a", logprobs: 2, echo: true }), "logprobs");
    rejects400(() => parseCompletionRequest({ model: "m", prompt: [] }), "prompt");
    rejects400(() => parseCompletionRequest({ model: "m", prompt: Array(9).fill("a"), n: 8 }), "prompt");
  });

  test("logprobs is 0–20; best_of is at least n, not streamed, and its candidates count toward the choice limit", () => {
    assert.equal(parseCompletionRequest({ model: "m", prompt: "a", logprobs: 2 }).sampling.logprobs, 2);
    assert.equal(parseCompletionRequest({ model: "m", prompt: "a", logprobs: 0 }).logprobs, true);
    rejects400(() => parseCompletionRequest({ model: "m", prompt: "a", logprobs: 21 }), "logprobs");
    const best = parseCompletionRequest({ model: "m", prompt: "a", n: 2, best_of: 3 });
    assert.equal(best.bestOf, 3);
    assert.equal(best.logprobs, false, "the client did not ask for logprobs");
    assert.equal(best.sampling.logprobs, 0, "but the jobs record them, to rank the candidates");
    assert.equal(parseCompletionRequest({ model: "m", prompt: "a", n: 2 }).bestOf, 2);
    rejects400(() => parseCompletionRequest({ model: "m", prompt: "a", n: 3, best_of: 2 }), "best_of");
    rejects400(() => parseCompletionRequest({ model: "m", prompt: "a", best_of: 21 }), "best_of");
    rejects400(() => parseCompletionRequest({ model: "m", prompt: "a", best_of: 2, stream: true }), "best_of");
    rejects400(() => parseCompletionRequest({ model: "m", prompt: Array(4).fill("a"), best_of: 20 }), "prompt");
  });
});

describe("parseEmbeddingRequest", () => {
  test("a string or an array; float by default", () => {
    assert.deepEqual(parseEmbeddingRequest({ model: "m", input: "a" }), {
      model: "m",
      inputs: ["a"],
      encoding: "float",
    });
    assert.deepEqual(
      parseEmbeddingRequest({ model: "m", input: ["a", "b"], encoding_format: "base64", dimensions: 64 }),
      {
        model: "m",
        inputs: ["a", "b"],
        encoding: "base64",
        dimensions: 64,
      },
    );
  });

  test("empty strings, token arrays and bad encodings are 400s", () => {
    rejects400(() => parseEmbeddingRequest({ model: "m", input: "" }), "input");
    rejects400(() => parseEmbeddingRequest({ model: "m", input: ["a", ""] }), "input.1");
    rejects400(() => parseEmbeddingRequest({ model: "m", input: [[1, 2]] }), "input.0", "unsupported_value");
    rejects400(() => parseEmbeddingRequest({ model: "m", input: "a", encoding_format: "hex" }), "encoding_format");
  });
});

describe("response helpers", () => {
  test("usage sums over choices with total_tokens", () => {
    assert.deepEqual(
      sumUsage([
        { prompt_tokens: 3, completion_tokens: 4 },
        { prompt_tokens: 3, completion_tokens: 1 },
      ]),
      { prompt_tokens: 6, completion_tokens: 5, total_tokens: 11 },
    );
  });

  test("usage reports completion_tokens_details.reasoning_tokens only when a choice ran on a reasoning model", () => {
    assert.deepEqual(
      sumUsage([
        { prompt_tokens: 3, completion_tokens: 4, reasoning_tokens: 3 },
        { prompt_tokens: 3, completion_tokens: 1, reasoning_tokens: 0 },
      ]),
      { prompt_tokens: 6, completion_tokens: 5, total_tokens: 11, completion_tokens_details: { reasoning_tokens: 3 } },
    );
  });

  test("base64 embeddings are little-endian float32", () => {
    const encoded = toBase64Float32([1, -0.5, 0.25]);
    const buffer = Buffer.from(encoded, "base64");
    assert.deepEqual([...new Float32Array(buffer.buffer, buffer.byteOffset, 3)], [1, -0.5, 0.25]);
    const list = embeddingList("m", [[1]], "float", 2);
    assert.deepEqual(list, {
      object: "list",
      data: [{ object: "embedding", index: 0, embedding: [1] }],
      model: "m",
      usage: { prompt_tokens: 2, total_tokens: 2 },
    });
  });

  test("seeds fold into 0..2^32-1", () => {
    assert.equal(foldSeed(5), 5);
    assert.equal(foldSeed(-1), 2 ** 32 - 1);
    assert.equal(foldSeed(2 ** 32 + 7), 7);
  });
});
