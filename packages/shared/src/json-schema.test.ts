import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { UnsupportedSchemaError } from "./errors/unsupported-schema-error.js";
import { normalizeJsonSchemaForGrammar, validateJsonSchemaForGrammar } from "./json-schema.js";

const rejects = (schema: unknown, pointer: string, reason: RegExp): void => {
  assert.throws(
    () => normalizeJsonSchemaForGrammar(schema),
    (error: unknown) => {
      assert.ok(error instanceof UnsupportedSchemaError);
      assert.equal(error.pointer, pointer);
      assert.match(error.message, reason);
      return true;
    },
  );
};

describe("normalizeJsonSchemaForGrammar", () => {
  test("passes a plain object schema through unchanged", () => {
    const schema = {
      type: "object",
      title: "Person",
      properties: {
        name: { type: "string", minLength: 1, maxLength: 40, description: "full name" },
        age: { type: "integer" },
        tags: { type: "array", items: { type: "string" }, maxItems: 3 },
        kind: { enum: ["a", "b", null] },
        born: { type: "string", format: "date" },
      },
      required: ["name", "age"],
      additionalProperties: false,
    };
    assert.deepEqual(normalizeJsonSchemaForGrammar(schema), schema);
    assert.equal(validateJsonSchemaForGrammar(schema), null);
  });

  test("rewrites anyOf to oneOf and definitions to $defs (pydantic's Optional and v1 refs)", () => {
    const schema = {
      type: "object",
      properties: { pet: { anyOf: [{ $ref: "#/definitions/Pet" }, { type: "null" }] } },
      required: ["pet"],
      definitions: { Pet: { type: "object", properties: { name: { type: "string" } } } },
    };
    assert.deepEqual(normalizeJsonSchemaForGrammar(schema), {
      type: "object",
      properties: { pet: { oneOf: [{ $ref: "#/$defs/Pet" }, { type: "null" }] } },
      required: ["pet"],
      $defs: { Pet: { type: "object", properties: { name: { type: "string" } } } },
    });
  });

  test("drops string formats the grammar does not generate (they are annotations)", () => {
    assert.deepEqual(normalizeJsonSchemaForGrammar({ type: "string", format: "email" }), { type: "string" });
    assert.deepEqual(normalizeJsonSchemaForGrammar({ type: "string", format: "date-time" }), {
      type: "string",
      format: "date-time",
    });
  });

  test("turns a type list with object into a oneOf (the generator would only emit null)", () => {
    assert.deepEqual(
      normalizeJsonSchemaForGrammar({
        type: ["object", "null"],
        description: "maybe",
        properties: { a: { type: "boolean" } },
      }),
      {
        description: "maybe",
        oneOf: [
          { properties: { a: { type: "boolean" } }, type: "object" },
          { properties: { a: { type: "boolean" } }, type: "null" },
        ],
      },
    );
  });

  test("rejects keywords a grammar cannot enforce, naming where", () => {
    rejects(
      { type: "object", properties: { id: { type: "string", pattern: "^a" } } },
      "/properties/id/pattern",
      /pattern/,
    );
    rejects({ allOf: [{ type: "string" }] }, "/allOf", /allOf/);
    rejects({ type: "integer", minimum: 0 }, "/minimum", /minimum/);
    rejects({ type: "array", items: { type: "string" }, uniqueItems: true }, "/uniqueItems", /uniqueItems/);
    rejects({ type: "object", properties: { "a/b": { not: {} } } }, "/properties/a~1b/not", /not/);
  });

  test("rejects refs it cannot resolve and malformed schemas", () => {
    rejects({ $ref: "https://example.com/schema.json" }, "/$ref", /local refs/);
    rejects({ $ref: "#/$defs/Missing" }, "/$ref", /points to no definition/);
    rejects("object", "", /JSON object/);
    rejects({ type: "object", properties: { a: false } }, "/properties/a", /allows nothing/);
    rejects({ type: "date" }, "/type", /unknown type/);
    rejects({ enum: [{ a: 1 }] }, "/enum/0", /literals/);
    rejects({ type: "object", properties: { a: { type: "string" } }, required: ["b"] }, "", /"b" not in `properties`/);
    rejects({ const: "x", enum: ["x"] }, "", /combining/);
    rejects({ type: "array", items: [{ type: "string" }] }, "/items", /prefixItems/);
  });

  test("validateJsonSchemaForGrammar returns the reason instead of throwing", () => {
    const reason = validateJsonSchemaForGrammar({ type: "string", pattern: "x" });
    assert.ok(reason?.includes("pattern"), String(reason));
  });
});

describe("annotation depth", () => {
  test("an annotation nested deeper than a schema may is rejected, not passed on", () => {
    let deep: unknown = "leaf";
    for (let i = 0; i < 20_000; i++) deep = { a: deep };
    const problem = validateJsonSchemaForGrammar({ type: "string", examples: [deep] });
    assert.match(problem ?? "", /nesting deeper than/);
    assert.equal(validateJsonSchemaForGrammar({ type: "string", examples: [{ a: { b: 1 } }] }), null);
  });
});
