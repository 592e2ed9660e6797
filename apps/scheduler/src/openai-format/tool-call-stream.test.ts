import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ToolCallStreamParser, type ToolCallStreamEvent } from "./tool-call-stream.js";

/** The calls the events describe: names and joined arguments, by index. */
function calls(events: readonly ToolCallStreamEvent[]): { name: string; arguments: string }[] {
  const out: { name: string; arguments: string }[] = [];
  for (const event of events) {
    if (event.type === "call") {
      assert.equal(event.index, out.length, "calls are numbered in order");
      out.push({ name: event.name, arguments: "" });
    } else {
      const call = out[event.index];
      assert.ok(call, "arguments come after their call's name");
      call.arguments += event.text;
    }
  }
  return out;
}

const feed = (parser: ToolCallStreamParser, pieces: readonly string[]) => pieces.flatMap((p) => parser.push(p));

describe("ToolCallStreamParser", () => {
  const text =
    '{ "tool_calls": [ { "name": "get_weather", "arguments": { "city": "Pa\\"ris}", "tags": ["a", {"b": 1}] } },\n' +
    '  {"name":"add","arguments":{"a":1,"b":2}} ] }';

  test("names each call when its name is written, then relays its arguments as written", () => {
    const events = feed(new ToolCallStreamParser(), [text]);
    assert.deepEqual(calls(events), [
      { name: "get_weather", arguments: '{ "city": "Pa\\"ris}", "tags": ["a", {"b": 1}] }' },
      { name: "add", arguments: '{"a":1,"b":2}' },
    ]);
    for (const call of calls(events)) JSON.parse(call.arguments);
  });

  test("character by character: the name as soon as it closes, and arguments piece by piece", () => {
    const parser = new ToolCallStreamParser();
    const events = feed(parser, [...text]);
    assert.ok(events.filter((e) => e.type === "arguments").length > 10);
    assert.deepEqual(calls(events), calls(feed(new ToolCallStreamParser(), [text])));
    assert.equal(parser.calls, 2);
    // The first call's name is out before its arguments are complete.
    const partial = feed(new ToolCallStreamParser(), [text.slice(0, text.indexOf('"city"'))]);
    assert.deepEqual(partial.at(0), { type: "call", index: 0, name: "get_weather" });
  });

  test("any split of the text gives the same calls", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: text.length }), { maxLength: 12 }), (cuts) => {
        const points = [0, ...[...cuts].sort((a, b) => a - b), text.length];
        const pieces = points.slice(1).map((end, i) => text.slice(points[i], end));
        assert.deepEqual(
          calls(feed(new ToolCallStreamParser(), pieces)),
          calls(feed(new ToolCallStreamParser(), [text])),
        );
      }),
    );
  });
});
