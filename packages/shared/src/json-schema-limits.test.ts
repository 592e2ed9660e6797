import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { UnsupportedSchemaError } from "./errors/unsupported-schema-error.js";
import { JSON_SCHEMA_LIMITS, normalizeJsonSchemaForGrammar } from "./json-schema.js";

const refusal = (schema: unknown): UnsupportedSchemaError => {
  try {
    normalizeJsonSchemaForGrammar(schema);
  } catch (error) {
    assert.ok(error instanceof UnsupportedSchemaError, String(error));
    return error;
  }
  assert.fail("the schema was accepted");
};

const values = (n: number, width = 4): string[] =>
  Array.from({ length: n }, (_, i) => `v${String(i).padStart(width, "0")}`);

/** Issue 16: a grammar's cost grows with its alternatives; big schemas are refused, naming keyword and path. */
describe("json_schema size limits", () => {
  test("an enum of 20,000 strings is refused, naming the keyword and its path", () => {
    const error = refusal({ type: "object", properties: { color: { enum: values(20_000, 5) } } });
    assert.equal(error.pointer, "/properties/color/enum");
    assert.match(error.message, /`enum` lists 20000 alternatives; at most 500 are allowed/);
    assert.equal(error.code, "unsupported_schema");
  });

  test("the largest enum allowed passes; one more value is refused", () => {
    const max = JSON_SCHEMA_LIMITS.maxAlternatives;
    normalizeJsonSchemaForGrammar({ enum: values(max) });
    assert.equal(refusal({ enum: values(max + 1) }).pointer, "/enum");
  });

  test("oneOf and anyOf count their branches", () => {
    const branches = Array.from({ length: 501 }, (_, i) => ({ const: `c${i}` }));
    assert.match(refusal({ anyOf: branches }).message, /`anyOf` lists 501 alternatives/);
    assert.match(refusal({ oneOf: branches }).message, /`oneOf` lists 501 alternatives/);
  });

  test("alternatives are counted over the whole schema, consts included", () => {
    const properties = Object.fromEntries(
      Array.from({ length: 3 }, (_, i) => [`p${i}`, { enum: values(400).map((v) => `${v}-${i}`) }]),
    );
    const error = refusal({ type: "object", properties });
    assert.match(error.message, /1200 alternatives .*at most 1000/);
    assert.equal(error.pointer, "/properties/p2/enum");
  });

  test("a schema over the byte limit is refused", () => {
    const error = refusal({ type: "string", description: "x".repeat(JSON_SCHEMA_LIMITS.maxBytes) });
    assert.equal(error.pointer, "");
    assert.match(error.message, /bytes of JSON; at most 65536 are allowed/);
  });

  test("a schema nested 20,000 levels deep (in an annotation) is refused, not a stack overflow", () => {
    let deep: unknown = {};
    for (let i = 0; i < 20_000; i++) deep = { a: deep };
    const error = refusal({ type: "string", description: deep });
    assert.match(error.message, /nesting deeper than 128 levels of JSON/);
    assert.ok(error.pointer.startsWith("/description/a/a/"));
  });
});
