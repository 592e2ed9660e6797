import { test } from "node:test";
import assert from "node:assert/strict";
import type { JobChatMessage, JobTools } from "@corral/shared";
import { toChatHistory } from "./chat-template.js";
import { parseToolCallsText, toolCallSchema } from "./tool-calls.js";

const TOOLS: JobTools = {
  functions: [
    { name: "get_weather", description: "Weather", parameters: { type: "object", properties: {} } },
    { name: "search", parameters: { type: "object", properties: {} } },
  ],
  required: false,
  max_calls: 2,
};

const CONVERSATION: JobChatMessage[] = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "Weather in Paris?" },
  {
    role: "assistant",
    content: "Checking.",
    tool_calls: [
      { id: "call_a", name: "get_weather", arguments: '{"city":"Paris"}' },
      { id: "call_b", name: "search", arguments: '{"q":"Paris"}' },
    ],
  },
  { role: "tool", content: '{"sky":"clear"}', tool_call_id: "call_a", name: "get_weather" },
  { role: "tool", content: "nothing found", tool_call_id: "call_b", name: "search" },
  { role: "assistant", content: "It is clear." },
  { role: "user", content: "Thanks" },
];

test("native: an assistant's calls and their results are one model turn, which the reply after them continues", () => {
  const history = toChatHistory(CONVERSATION, { rendering: "native", tools: TOOLS });
  assert.deepEqual(history, [
    { type: "system", text: "Be brief." },
    { type: "user", text: "Weather in Paris?" },
    {
      type: "model",
      response: [
        "Checking.",
        { type: "functionCall", name: "get_weather", params: { city: "Paris" }, result: { sky: "clear" } },
        { type: "functionCall", name: "search", params: { q: "Paris" }, result: "nothing found" },
        "It is clear.",
      ],
    },
    { type: "user", text: "Thanks" },
    { type: "model", response: [] },
  ]);
});

test("native: a conversation that ends with results ends in the calling turn, which the model goes on with", () => {
  const history = toChatHistory(CONVERSATION.slice(0, 5), { rendering: "native", tools: TOOLS });
  assert.equal(history.length, 3);
  const last = history.at(-1);
  assert.equal(last?.type, "model");
  assert.equal(last?.type === "model" ? last.response.length : 0, 3, "text and two calls, no new turn");
});

test("native: a result for no known call is a user turn naming it", () => {
  const history = toChatHistory(
    [
      { role: "user", content: "Hi" },
      { role: "tool", content: "42", tool_call_id: "call_x", name: "search" },
    ],
    { rendering: "native", tools: TOOLS },
  );
  assert.deepEqual(history[1], { type: "user", text: "Result of tool call call_x (search):\n42" });
});

test("template-agnostic: the tools' system message first, calls as JSON text after the content, results as user turns", () => {
  const history = toChatHistory(CONVERSATION, { rendering: "text", tools: TOOLS });
  const first = history[0];
  assert.ok(first?.type === "system" && typeof first.text === "string");
  assert.match(first.text, /^You can call these functions:\n\{"name":"get_weather"/);
  assert.deepEqual(history.slice(3, 6), [
    {
      type: "model",
      response: [
        'Checking.\n{"tool_calls":[{"name":"get_weather","arguments":{"city":"Paris"}},{"name":"search","arguments":{"q":"Paris"}}]}',
      ],
    },
    { type: "user", text: 'Result of tool call call_a (get_weather):\n{"sky":"clear"}' },
    { type: "user", text: "Result of tool call call_b (search):\nnothing found" },
  ]);
  // Without tools, messages are as they were.
  assert.deepEqual(toChatHistory([{ role: "user", content: "Hi" }]), [
    { type: "user", text: "Hi" },
    { type: "model", response: [] },
  ]);
});

test("template-agnostic replies: only an exact {tool_calls} object of known functions, within max_calls, is a call", () => {
  const calls = parseToolCallsText(' {"tool_calls": [{"name": "search", "arguments": {"q": "x"}}]} ', TOOLS);
  assert.equal(calls?.length, 1);
  assert.deepEqual({ ...calls![0], id: "" }, { id: "", name: "search", arguments: '{"q":"x"}' });
  assert.match(calls![0]!.id, /^call_[A-Za-z0-9_-]{16}$/);
  assert.equal(parseToolCallsText('{"tool_calls": [{"name": "nope", "arguments": {}}]}', TOOLS), null);
  assert.equal(parseToolCallsText("Hello", TOOLS), null);
  assert.equal(parseToolCallsText('{"tool_calls": [', TOOLS), null);
  const three = JSON.stringify({ tool_calls: [1, 2, 3].map(() => ({ name: "search", arguments: {} })) });
  assert.equal(parseToolCallsText(three, TOOLS), null, "more than max_calls");
  // A named choice allows only its function, in the parser and in the call grammar.
  const named = { ...TOOLS, required: true, only: "search" };
  assert.equal(parseToolCallsText('{"tool_calls": [{"name": "get_weather", "arguments": {}}]}', named), null);
  const schema = toolCallSchema(named) as { properties: { tool_calls: { items: { properties: { name: unknown } } } } };
  assert.deepEqual(schema.properties.tool_calls.items.properties.name, { const: "search" });
});
