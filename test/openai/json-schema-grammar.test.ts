import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Ajv } from "ajv";
import OpenAI from "openai";
import { zodResponseFormat } from "openai/helpers/zod";
import { z } from "zod";
import { STORIES, TINY_RANDOM, startStack, type OpenAIStack } from "./harness.js";

/** What zod writes for the common validators, through the openai client's own helper. */
const Person = z
  .object({
    id: z.uuid(),
    email: z.email(),
    born: z.iso.date(),
    seen_at: z.iso.datetime(),
    wakes: z.iso.time(),
    visits: z.number().int(),
    age: z.number().int().min(0).max(120),
    score: z.number().min(-1).max(1),
    code: z.string().regex(/^[A-Z]{3}-\d{2}$/),
    tags: z.array(z.string().min(1).max(6)).min(1).max(3),
    pet: z.union([z.object({ kind: z.literal("cat"), lives: z.number().int().min(1).max(9) }), z.null()]),
  })
  .strict();

/** $ref/$defs, anyOf and additionalProperties: false, written by hand. */
const TREE = {
  type: "object",
  properties: { root: { $ref: "#/$defs/node" } },
  required: ["root"],
  additionalProperties: false,
  $defs: {
    node: {
      type: "object",
      properties: {
        label: { type: "string", pattern: "^[a-z]{1,8}$" },
        weight: { anyOf: [{ type: "integer", exclusiveMinimum: 0, maximum: 10 }, { type: "null" }] },
      },
      required: ["label", "weight"],
      additionalProperties: false,
    },
  },
};

describe("JSON Schema from zod through the openai client, enforced by the grammar on real llama.cpp", () => {
  let stack: OpenAIStack;
  let client: OpenAI;
  const ajv = new Ajv({ strict: false, allErrors: true });
  // Ajv checks `pattern`, bounds, lengths and items; these formats it is taught here (zod's patterns check them too).
  ajv.addFormat("uuid", /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i);
  ajv.addFormat("email", /^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$/);
  ajv.addFormat("date", /^\d{4}-\d{2}-\d{2}$/);
  ajv.addFormat("date-time", /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
  ajv.addFormat("time", /^\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/);

  before(async () => {
    stack = await startStack();
    client = stack.client();
  });

  after(async () => {
    await stack?.close();
  });

  for (const model of [STORIES, TINY_RANDOM]) {
    test(`${model}: every zod validator's output parses with zod itself (chat.completions.parse), at several seeds`, async () => {
      const format = zodResponseFormat(Person, "person");
      for (const seed of [1, 2, 3]) {
        const completion = await client.chat.completions.parse({
          model,
          messages: [{ role: "user", content: "Describe a person." }],
          response_format: format,
          temperature: 1,
          seed,
          max_tokens: 960,
        });
        const choice = completion.choices[0]!;
        assert.equal(choice.finish_reason, "stop", `seed ${seed}: ${choice.message.content}`);
        const parsed = choice.message.parsed;
        assert.ok(parsed, `seed ${seed}: parsed`);
        assert.deepEqual(Person.parse(parsed), parsed);
        const validate = ajv.compile(format.json_schema.schema!);
        assert.ok(validate(parsed), `seed ${seed}: ${JSON.stringify(validate.errors)}`);
        assert.ok(Number.isSafeInteger(parsed.visits));
      }
    });
  }

  test("$ref/$defs, anyOf, exclusiveMinimum and additionalProperties: false through json_schema", async () => {
    const validate = ajv.compile(TREE);
    for (const seed of [5, 6]) {
      const completion = await client.chat.completions.create({
        model: STORIES,
        messages: [{ role: "user", content: "A tree." }],
        response_format: { type: "json_schema", json_schema: { name: "tree", schema: TREE, strict: true } },
        temperature: 1,
        seed,
        max_tokens: 200,
      });
      const value = JSON.parse(completion.choices[0]!.message.content!) as unknown;
      assert.ok(validate(value), `seed ${seed}: ${JSON.stringify(value)} ${JSON.stringify(validate.errors)}`);
    }
  });

  test("numeric bounds, inclusive and exclusive, hold at every seed on the random-weights model", async () => {
    const ranges = {
      type: "object",
      properties: {
        a: { type: "integer", minimum: 37, maximum: 4215 },
        b: { type: "integer", exclusiveMinimum: -10, exclusiveMaximum: -3 },
        c: { type: "number", minimum: -1.5, maximum: 2.25 },
        d: { type: "number", exclusiveMinimum: 0, exclusiveMaximum: 1 },
        e: { type: "integer", minimum: -(2 ** 53 - 1), maximum: 2 ** 53 - 1 },
      },
      required: ["a", "b", "c", "d", "e"],
      additionalProperties: false,
    };
    const validate = ajv.compile(ranges);
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const completion = await client.chat.completions.create({
        model: TINY_RANDOM,
        messages: [{ role: "user", content: "Numbers." }],
        response_format: { type: "json_schema", json_schema: { name: "ranges", schema: ranges } },
        temperature: 1.5,
        seed,
        max_tokens: 300,
      });
      const value = JSON.parse(completion.choices[0]!.message.content!) as { e: number };
      assert.ok(validate(value), `seed ${seed}: ${JSON.stringify(value)} ${JSON.stringify(validate.errors)}`);
      assert.ok(Number.isSafeInteger(value.e));
    }
  });

  test("what a grammar cannot enforce is a 400 naming the keyword and its path", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { type: "object", properties: { s: { type: "string", pattern: "^(?=a)b$" } } },
        /\/properties\/s\/pattern.*lookaround/,
      ],
      [
        { type: "object", properties: { s: { type: "string", pattern: "(a)\\1" } } },
        /\/properties\/s\/pattern.*backreference/,
      ],
      [{ type: "object", properties: { n: { type: "number", multipleOf: 3 } } }, /\/properties\/n\/multipleOf/],
      [
        { type: "object", properties: { s: { type: "string", format: "email", maxLength: 5 } } },
        /\/properties\/s.*combining `format` with `maxLength`/,
      ],
      [
        { type: "object", properties: { n: { type: "integer", minimum: 5, maximum: 4 } } },
        /\/properties\/n\/minimum.*no integer/,
      ],
    ];
    for (const [schema, message] of cases) {
      await assert.rejects(
        client.chat.completions.create({
          model: STORIES,
          messages: [{ role: "user", content: "x" }],
          response_format: { type: "json_schema", json_schema: { name: "x", schema } },
        }),
        (error: unknown) => {
          assert.ok(error instanceof OpenAI.BadRequestError, String(error));
          assert.equal(error.code, "unsupported_schema");
          assert.equal(error.param, "response_format.json_schema.schema");
          assert.match(error.message, message);
          return true;
        },
      );
    }
  });
});
