import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { validateJsonSchemaForGrammar } from "../json-schema.js";
import { JobRequest } from "./job-request.js";

const RUNS = { seed: 1616, numRuns: 500 };

test("property: JobRequest never throws on any JSON, and what it accepts has exactly one of prompt and messages", () => {
  const field = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constant("stories260K"), fc.constant("hi"));
  fc.assert(
    fc.property(
      fc.record(
        {
          model: field,
          prompt: field,
          messages: fc.oneof(
            field,
            fc.array(fc.record({ role: fc.constantFrom("user", "system", "x"), content: field })),
          ),
          max_tokens: field,
          temperature: field,
          response_format: field,
          priority: field,
          metadata: field,
        },
        { requiredKeys: [] },
      ),
      (body) => {
        const parsed = JobRequest.safeParse(body);
        if (parsed.success) assert.notEqual(parsed.data.prompt === undefined, parsed.data.messages === undefined);
      },
    ),
    RUNS,
  );
});

test("property: validateJsonSchemaForGrammar answers every JSON value with null or a reason, never a throw", () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 6 }), (schema) => {
      const problem = validateJsonSchemaForGrammar(schema);
      assert.ok(problem === null || typeof problem === "string");
    }),
    RUNS,
  );
});
