import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { checkLine } from "./batch-lines.js";

const RUNS = { seed: 1616, numRuns: 300 };

test("property: checkLine never throws; a fault names its line", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string(),
        fc.json(),
        fc.jsonValue().map((v) => JSON.stringify(v)),
      ),
      fc.integer({ min: 1, max: 1_000_000 }),
      (text, line) => {
        const checked = checkLine(text, line, "/v1/chat/completions");
        if (!checked.ok) {
          assert.equal(checked.error.line, line);
          assert.ok(checked.error.message.startsWith(`Line ${line}:`));
        }
      },
    ),
    RUNS,
  );
});

test("property: a well-formed line is accepted with its custom_id and body as given", () => {
  fc.assert(
    fc.property(
      fc.string({ minLength: 1, maxLength: 512 }),
      fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 3 })),
      (customId, body) => {
        const text = JSON.stringify({ custom_id: customId, method: "POST", url: "/v1/chat/completions", body });
        const checked = checkLine(text, 7, "/v1/chat/completions");
        assert.ok(checked.ok, JSON.stringify(checked));
        assert.equal(checked.request.custom_id, customId);
        assert.deepEqual(checked.request.body, JSON.parse(JSON.stringify(body)));
      },
    ),
    RUNS,
  );
});
