import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { UnsupportedSchemaError } from "./errors/unsupported-schema-error.js";
import {
  normalizeJsonSchemaForGrammar,
  planJsonSchemaGrammar,
  slotConst,
  validateJsonSchemaForGrammar,
} from "./json-schema.js";

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

  test("drops string formats no grammar generates (they are annotations); keeps date-time for the generator", () => {
    assert.deepEqual(normalizeJsonSchemaForGrammar({ type: "string", format: "hostname" }), { type: "string" });
    assert.deepEqual(normalizeJsonSchemaForGrammar({ type: "string", format: "date-time" }), {
      type: "string",
      format: "date-time",
    });
  });

  test("pattern, the email and uuid formats and numeric bounds become slots with their own GBNF rule", () => {
    const plan = planJsonSchemaGrammar({
      type: "object",
      properties: {
        code: { type: "string", pattern: "^[A-Z]{3}-\\d{2}$" },
        mail: { type: "string", format: "email" },
        id: { type: "string", format: "uuid" },
        age: { type: "integer", minimum: 0, maximum: 120 },
        n: { type: "integer", minimum: -(2 ** 53 - 1), maximum: 2 ** 53 - 1 },
        score: { type: "number", minimum: 0, maximum: 1 },
      },
      required: ["code"],
    });
    assert.deepEqual(plan.schema.properties, {
      code: { const: slotConst(0) },
      mail: { const: slotConst(1) },
      id: { const: slotConst(2) },
      age: { const: slotConst(3) },
      n: { const: slotConst(4) },
      score: { const: slotConst(5) },
    });
    assert.equal(plan.slots[0], '"\\"" ([A-Z]){3} [\\x2d] ([0-9]){2} "\\""');
    assert.match(plan.slots[2]!, /\[1-8\]/);
    // 0..120: one digit, two digits, then 100-120.
    assert.equal(plan.slots[3], '([0-9] | [1-9] [0-9] | "1" ([0-1] [0-9] | "2" "0"))');
    assert.ok(plan.slots[4]!.startsWith('("-" '), "negatives first");
    assert.ok(plan.slots[4]!.includes('"9" "0" "0" ([0-6] [0-9]{12} | "7"'), "up to 9007199254740991");
    assert.ok(plan.slots[4]!.length < 4000, "the rule grows with the digits, not the range");
    assert.match(plan.slots[5]!, /"\." \[0-9\]\{1,6\}/, "decimals in [0, 1)");
    assert.equal(planJsonSchemaGrammar({ type: "integer" }).slots.length, 0, "no bounds: the generator's rule");
  });

  test("a pattern that cannot be a grammar, or a slot combined with what its rule would drop, is refused", () => {
    rejects({ type: "string", pattern: "^(?!a)b$" }, "/pattern", /lookarounds/);
    rejects({ type: "string", pattern: "(a)\\1" }, "/pattern", /backreferences/);
    rejects({ type: "string", pattern: "\\bword" }, "/pattern", /word boundary/);
    rejects({ type: "string", pattern: "[a" }, "/pattern", /unclosed/);
    rejects({ type: "string", pattern: "a**" }, "/pattern", /quantifier after a quantifier/);
    rejects({ type: "string", pattern: "^a", minLength: 2 }, "", /combining `pattern` with `minLength`/);
    rejects({ type: "integer", minimum: 0, enum: [1, 2] }, "", /combining `minimum` with `enum`/);
    rejects({ type: "string", minimum: 0 }, "/minimum", /integer/);
    rejects({ type: "integer", minimum: 3, maximum: 2 }, "/minimum", /no integer/);
    rejects({ type: "number", multipleOf: 2 }, "/multipleOf", /multipleOf/);
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
    rejects({ allOf: [{ type: "string" }] }, "/allOf", /allOf/);
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
    const reason = validateJsonSchemaForGrammar({ type: "string", pattern: "(?=x)" });
    assert.ok(reason?.includes("pattern"), String(reason));
    assert.equal(validateJsonSchemaForGrammar({ type: "string", pattern: "x" }), null);
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
