import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { InvalidRequestError } from "@corral/shared";
import { parseResponsesRequest } from "./responses-request.js";

const body = (extra: Record<string, unknown> = {}) => ({ model: "m", input: "hi", ...extra });
const WEATHER = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };
const TOOL = { type: "function", name: "get_weather", parameters: WEATHER };

function rejects400(fn: () => unknown, param: string, code?: string): InvalidRequestError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof InvalidRequestError, String(error));
    assert.equal(error.param, param, error.message);
    if (code) assert.equal(error.code, code);
    return error;
  }
  assert.fail(`expected a 400 on ${param}`);
}

describe("parseResponsesRequest", () => {
  test("a string input with instructions is a system and a user message; OpenAI's defaults are echoed", () => {
    const { chat, settings, logprobs } = parseResponsesRequest(body({ instructions: "Be brief." }));
    assert.deepEqual(chat, {
      model: "m",
      n: 1,
      stream: false,
      includeUsage: false,
      sampling: { temperature: 1 },
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "hi" },
      ],
      tools: null,
    });
    assert.equal(logprobs, false);
    assert.deepEqual(settings, {
      instructions: "Be brief.",
      max_output_tokens: null,
      temperature: 1,
      top_p: 1,
      top_logprobs: 0,
      tools: [],
      tool_choice: "auto",
      parallel_tool_calls: true,
      max_tool_calls: null,
      metadata: {},
      text: { format: { type: "text" } },
      user: null,
      reasoning: { effort: null, summary: null },
    });
  });

  test("reasoning.effort maps to chat's thought budgets; max_reasoning_tokens sets one; summary is accepted and echoed", () => {
    const budget = (extra: Record<string, unknown>) =>
      parseResponsesRequest(body(extra)).chat.sampling.reasoning_budget;
    assert.equal(budget({ reasoning: { effort: "none" } }), 0);
    assert.equal(budget({ reasoning: { effort: "minimal" } }), 256);
    assert.equal(budget({ reasoning: { effort: "low" } }), 1024);
    assert.equal(budget({ reasoning: { effort: "medium" } }), 4096);
    assert.equal(budget({ reasoning: { effort: "high" } }), 16384);
    assert.equal(budget({ max_reasoning_tokens: 7 }), 7);
    assert.equal(budget({}), undefined);
    assert.equal(budget({ reasoning: { effort: null, summary: "auto" } }), undefined);
    const { settings } = parseResponsesRequest(
      body({ reasoning: { effort: "low", summary: "detailed", context: "current_turn", mode: "standard" } }),
    );
    assert.deepEqual(settings.reasoning, { effort: "low", summary: "detailed" });
    const deprecated = parseResponsesRequest(body({ reasoning: { generate_summary: "concise" } }));
    assert.deepEqual(deprecated.settings.reasoning, { effort: null, summary: "concise" });
    // The include clients send with store: false on reasoning models is accepted (nothing is encrypted).
    assert.equal(parseResponsesRequest(body({ include: ["reasoning.encrypted_content"] })).logprobs, false);
  });

  test("reasoning fields Corral cannot honour are 400s naming them", () => {
    rejects400(() => parseResponsesRequest(body({ reasoning: { effort: "xhigh" } })), "reasoning.effort");
    rejects400(() => parseResponsesRequest(body({ reasoning: { summary: "long" } })), "reasoning.summary");
    rejects400(
      () => parseResponsesRequest(body({ reasoning: { context: "all_turns" } })),
      "reasoning.context",
      "unsupported_value",
    );
    rejects400(
      () => parseResponsesRequest(body({ reasoning: { mode: "pro" } })),
      "reasoning.mode",
      "unsupported_value",
    );
    rejects400(() => parseResponsesRequest(body({ max_reasoning_tokens: -1 })), "max_reasoning_tokens");
    rejects400(
      () => parseResponsesRequest(body({ reasoning: { effort: "low" }, max_reasoning_tokens: 3 })),
      "max_reasoning_tokens",
    );
  });

  test("reasoning input items (an earlier response's output sent back) are checked and left out of the prompt", () => {
    const { chat } = parseResponsesRequest(
      body({
        input: [
          { role: "user", content: "a" },
          { type: "reasoning", id: "rs_1", summary: [], content: [{ type: "reasoning_text", text: "hmm" }] },
          { type: "message", role: "assistant", content: [{ type: "output_text", text: "b" }] },
          { role: "user", content: "c" },
        ],
      }),
    );
    assert.deepEqual(chat.messages, [
      { role: "user", content: "a" },
      { role: "assistant", content: "b" },
      { role: "user", content: "c" },
    ]);
    rejects400(
      () => parseResponsesRequest(body({ input: [{ type: "reasoning", content: [{ type: "reasoning_text" }] }] })),
      "input.0.content.0.text",
    );
  });

  test("items: consecutive function_call items are one assistant turn carrying them; an output is a tool message naming its function", () => {
    const { chat } = parseResponsesRequest(
      body({
        input: [
          { role: "developer", content: [{ type: "input_text", text: "a" }] },
          { type: "message", role: "user", content: "b" },
          {
            type: "function_call",
            call_id: "call_1",
            name: "f",
            arguments: '{"x":1}',
            id: "fc_1",
            status: "completed",
          },
          { type: "function_call", call_id: "call_2", name: "g", arguments: "{}" },
          { type: "function_call_output", call_id: "call_2", output: "ok" },
          { role: "assistant", content: [{ type: "output_text", text: "done", annotations: [] }] },
        ],
      }),
    );
    assert.deepEqual(chat.messages, [
      { role: "system", content: "a" },
      { role: "user", content: "b" },
      {
        role: "assistant",
        content: "",
        tool_calls: [
          { id: "call_1", name: "f", arguments: '{"x":1}' },
          { id: "call_2", name: "g", arguments: "{}" },
        ],
      },
      { role: "tool", content: "ok", tool_call_id: "call_2", name: "g" },
      { role: "assistant", content: "done" },
    ]);
  });

  test("sampling, text.format, include and metadata map onto the chat request", () => {
    const { chat, logprobs, settings } = parseResponsesRequest(
      body({
        max_output_tokens: 32,
        temperature: 0.5,
        top_p: 0.9,
        include: ["message.output_text.logprobs"],
        top_logprobs: 4,
        text: { format: { type: "json_schema", name: "w", schema: WEATHER, strict: true } },
        metadata: { a: "b" },
        user: "u1",
        store: false,
        stream: true,
      }),
    );
    assert.equal(logprobs, true);
    assert.deepEqual(chat.sampling, {
      temperature: 0.5,
      top_p: 0.9,
      max_tokens: 32,
      response_format: { type: "json_schema", json_schema: { name: "w", schema: WEATHER, strict: true } },
      logprobs: 4,
    });
    assert.equal(chat.stream, true);
    assert.equal(chat.user, "u1");
    assert.deepEqual(settings.metadata, { a: "b" });
    assert.deepEqual(parseResponsesRequest(body({ text: { format: { type: "json_object" } } })).chat.sampling, {
      temperature: 1,
      response_format: { type: "json_object" },
    });
  });

  test("tools: Responses-shaped function tools make the chat route's plan; max_tool_calls caps the calls", () => {
    const required = parseResponsesRequest(body({ tools: [TOOL], tool_choice: "required", max_tool_calls: 2 }));
    assert.deepEqual(required.chat.tools, {
      functions: [{ name: "get_weather", parameters: WEATHER }],
      required: true,
      max_calls: 2,
    });
    const named = parseResponsesRequest(
      body({ tools: [TOOL], tool_choice: { type: "function", name: "get_weather" } }),
    );
    assert.equal(named.chat.tools?.only, "get_weather");
    assert.equal(named.chat.tools?.max_calls, 1, "a named function is called exactly once");
    assert.deepEqual(named.settings.tool_choice, { type: "function", name: "get_weather" });
    assert.equal(parseResponsesRequest(body({ tools: [TOOL], tool_choice: "none" })).chat.tools, null);
    assert.deepEqual(parseResponsesRequest(body({ tools: [TOOL] })).settings.tools, [
      { type: "function", name: "get_weather", description: null, parameters: WEATHER, strict: true },
    ]);
  });

  test("errors name the field in the Responses shape", () => {
    rejects400(() => parseResponsesRequest(body({ tools: [{ ...TOOL, name: "bad name" }] })), "tools.0.name");
    rejects400(() => parseResponsesRequest(body({ tools: [TOOL, TOOL] })), "tools.1.name");
    rejects400(
      () => parseResponsesRequest(body({ tools: [{ ...TOOL, parameters: { type: "object", not: {} } }] })),
      "tools.0.parameters",
      "unsupported_schema",
    );
    rejects400(() => parseResponsesRequest(body({ tools: [{ type: "function" }] })), "tools.0.name");
    rejects400(
      () =>
        parseResponsesRequest(
          body({ tools: [TOOL], tool_choice: "required", text: { format: { type: "json_object" } } }),
        ),
      "text.format",
    );
    rejects400(() => parseResponsesRequest(body({ tool_choice: { type: "file_search" } })), "tool_choice");
    rejects400(
      () =>
        parseResponsesRequest(body({ metadata: Object.fromEntries([...Array(17).keys()].map((i) => [`k${i}`, "v"])) })),
      "metadata",
    );
    rejects400(() => parseResponsesRequest(body({ input: [] })), "input");
    rejects400(() => parseResponsesRequest(body({ input: [{ role: "tool", content: "x" }] })), "input.0.role");
    rejects400(
      () =>
        parseResponsesRequest(body({ input: [{ type: "function_call", call_id: "c", name: "f", arguments: "{" }] })),
      "input.0.arguments",
    );
    rejects400(
      () => parseResponsesRequest(body({ input: [{ type: "web_search_call", id: "ws_1" }] })),
      "input.0.type",
      "unsupported_value",
    );
    rejects400(() => parseResponsesRequest(body({ stream_options: {} })), "stream_options");
    rejects400(() => parseResponsesRequest(body({ text: { verbosity: "low" } })), "text.verbosity");
  });
});
