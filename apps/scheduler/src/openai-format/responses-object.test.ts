import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { responseOutcome, responsesUsage } from "./responses-object.js";

const shape = (outcome: ReturnType<typeof responseOutcome>) =>
  [outcome.status, ...outcome.output.map((item) => `${item.type}:${item.status}`)].join(" ");

describe("responseOutcome on reasoning models", () => {
  test("thoughts are a reasoning item before the message; none when there were none or the model has no thoughts", () => {
    const outcome = responseOutcome("The end.", "stop", null, null, "I think");
    assert.equal(shape(outcome), "completed reasoning:completed message:completed");
    const [item] = outcome.output;
    assert.match(item!.id, /^rs_[A-Za-z0-9_-]{24}$/);
    assert.deepEqual(
      { ...item, id: "" },
      {
        id: "",
        type: "reasoning",
        status: "completed",
        summary: [],
        content: [{ type: "reasoning_text", text: "I think" }],
      },
    );
    assert.equal(shape(responseOutcome("The end.", "stop", null, null, "")), "completed message:completed");
    assert.equal(shape(responseOutcome("The end.", "stop", null, null)), "completed message:completed");
  });

  test("cut by max_output_tokens mid-thought: the reasoning item alone, incomplete; cut in the answer: both, the message incomplete", () => {
    assert.equal(shape(responseOutcome("", "length", null, null, "I think")), "incomplete reasoning:incomplete");
    assert.equal(
      shape(responseOutcome("The", "length", null, null, "I think")),
      "incomplete reasoning:completed message:incomplete",
    );
    // A model without thoughts cut before any text still answers with an (empty) message.
    assert.equal(shape(responseOutcome("", "length", null, null)), "incomplete message:incomplete");
  });

  test("usage: output_tokens_details.reasoning_tokens counts the thoughts, 0 for other models", () => {
    const usage = responsesUsage({ prompt_tokens: 3, completion_tokens: 9, reasoning_tokens: 6 });
    assert.deepEqual(usage.output_tokens_details, { reasoning_tokens: 6 });
    assert.equal(usage.total_tokens, 12);
    assert.deepEqual(responsesUsage({ prompt_tokens: 3, completion_tokens: 9 }).output_tokens_details, {
      reasoning_tokens: 0,
    });
  });
});

describe("responseOutcome with tool calls", () => {
  const calls = [
    { id: "call_1", name: "f", arguments: '{"x":1}' },
    { id: "call_2", name: "g", arguments: "{}" },
  ];

  test("the job's result.tool_calls are function_call items, after a message with the text a native call followed", () => {
    const outcome = responseOutcome("", "stop", calls, null);
    assert.equal(shape(outcome), "completed function_call:completed function_call:completed");
    assert.deepEqual(
      outcome.output.map((item) => (item.type === "function_call" ? [item.call_id, item.name, item.arguments] : null)),
      [
        ["call_1", "f", '{"x":1}'],
        ["call_2", "g", "{}"],
      ],
    );
    assert.equal(
      shape(responseOutcome("Let me look.", "stop", calls, null, "I think")),
      "completed reasoning:completed message:completed function_call:completed function_call:completed",
    );
    // No calls: the text is the message, whatever it looks like.
    assert.equal(shape(responseOutcome('{"tool_calls": []}', "stop", [], null)), "completed message:completed");
  });
});
