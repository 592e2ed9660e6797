import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { reasoningItem } from "../../openai-format/responses-object.js";
import { FunctionCallStream, MessageStream, ReasoningStream, ResponseEvents } from "./response-events.js";
import type { SseWriter } from "./sse-writer.js";

type Sent = { type: string; sequence_number: number; output_index?: number } & Record<string, unknown>;

/** ResponseEvents over a writer that keeps what it is given. */
function recorder() {
  const sent: Sent[] = [];
  const sse = { send: async (data: unknown) => void sent.push(data as Sent) } as unknown as SseWriter;
  return { events: new ResponseEvents(sse), sent };
}

/** Each event as `type@output_index`. */
const trace = (sent: readonly Sent[]) => sent.map((e) => `${e.type}@${e.output_index ?? "-"}`);

describe("ReasoningStream and the answer's streams", () => {
  test("thoughts are item 0, closed when the answer begins; the message follows at output_index 1", async () => {
    const { events, sent } = recorder();
    const reasoning = new ReasoningStream(events);
    assert.equal(reasoning.count, 0);
    await reasoning.text("Let me");
    await reasoning.text("");
    await reasoning.text(" think");
    assert.equal(reasoning.count, 1);
    await reasoning.close("completed");
    const message = new MessageStream(events, false, reasoning.count);
    await message.text("Hi", null);
    const items = await message.finish("completed");
    assert.deepEqual(trace(sent), [
      "response.output_item.added@0",
      "response.content_part.added@0",
      "response.reasoning_text.delta@0",
      "response.reasoning_text.delta@0",
      "response.reasoning_text.done@0",
      "response.content_part.done@0",
      "response.output_item.done@0",
      "response.output_item.added@1",
      "response.content_part.added@1",
      "response.output_text.delta@1",
      "response.output_text.done@1",
      "response.content_part.done@1",
      "response.output_item.done@1",
    ]);
    const id = reasoning.items()[0]!.id;
    assert.deepEqual(sent[0]!.item, { id, type: "reasoning", status: "in_progress", summary: [], content: [] });
    assert.deepEqual(sent[1]!.part, { type: "reasoning_text", text: "" });
    assert.equal(sent[4]!.text, "Let me think");
    assert.deepEqual(sent[6]!.item, reasoningItem(id, "completed", "Let me think"));
    assert.deepEqual(reasoning.items(), [reasoningItem(id, "completed", "Let me think")]);
    assert.equal(items[0]!.type, "message");
    assert.deepEqual(
      sent.map((e) => e.sequence_number),
      sent.map((_, i) => i),
    );
  });

  test("a forced call after a thought: its function_call items are numbered from 1", async () => {
    const { events, sent } = recorder();
    const reasoning = new ReasoningStream(events);
    await reasoning.text("hmm");
    await reasoning.close("completed");
    const calls = new FunctionCallStream(events, reasoning.count);
    await calls.text('{ "tool_calls": [ { "name": "f", "arguments": {"a":1} },');
    await calls.text(' { "name": "g", "arguments": {} } ] }');
    const items = await calls.finish("completed");
    assert.deepEqual(
      items.map((item) => item.type === "function_call" && [item.name, item.arguments]),
      [
        ["f", '{"a":1}'],
        ["g", "{}"],
      ],
    );
    // The thought took 6 events (added, part added, one delta, its done, part done, item done).
    const after = trace(sent.slice(6)).filter((t) => !t.startsWith("response.function_call_arguments.delta"));
    assert.deepEqual(after, [
      "response.output_item.added@1",
      "response.function_call_arguments.done@1",
      "response.output_item.done@1",
      "response.output_item.added@2",
      "response.function_call_arguments.done@2",
      "response.output_item.done@2",
    ]);
    assert.ok(
      sent.filter((e) => e.type === "response.function_call_arguments.delta").every((e) => e.output_index! >= 1),
    );
  });

  test("cut mid-thought: the open item is incomplete in the partial output, and closes incomplete", async () => {
    const { events, sent } = recorder();
    const reasoning = new ReasoningStream(events);
    assert.deepEqual(reasoning.items(), []);
    await reasoning.text("still thinking");
    assert.equal(reasoning.items()[0]!.status, "incomplete", "an open thought shows as incomplete");
    await reasoning.close("incomplete");
    await reasoning.close("completed");
    assert.equal(sent.filter((e) => e.type === "response.output_item.done").length, 1, "closed once");
    assert.equal(reasoning.items()[0]!.status, "incomplete");
  });

  test("thought text after the answer began is kept in the item, without events", async () => {
    const { events, sent } = recorder();
    const reasoning = new ReasoningStream(events);
    await reasoning.text("a");
    await reasoning.close("completed");
    const count = sent.length;
    await reasoning.text("b");
    assert.equal(sent.length, count);
    assert.equal(reasoning.items()[0]!.content[0]!.text, "ab");
  });

  test("a whole reasoning item (responses sent when complete): added empty, its text in one delta, then done", async () => {
    const { events, sent } = recorder();
    const item = reasoningItem("rs_1", "completed", "all of it");
    await events.item(0, item);
    assert.deepEqual(
      sent.map((e) => e.type),
      [
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
      ],
    );
    assert.equal(sent[2]!.delta, "all of it");
    assert.deepEqual(sent[5]!.item, item);
  });
});
