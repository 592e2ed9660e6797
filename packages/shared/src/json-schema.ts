import { UnsupportedSchemaError } from "./errors/unsupported-schema-error.js";
import { exceedsJsonDepth } from "./json-depth.js";
import { RULE_FORMATS, formatRule, numberRule, patternRule, type NumericBounds } from "./json-schema-rules.js";

/**
 * JSON Schema → grammar support check. node-llama-cpp's grammar generator accepts any
 * object and silently ignores what it does not know (an unknown `format` even allows only
 * `""`), so a schema it cannot enforce would yield output that does not match. This
 * module rejects such schemas up front and rewrites common equivalent spellings into the
 * subset the generator understands. What the generator lacks — `pattern`, the `email` and
 * `uuid` formats, numeric bounds — becomes a "slot": the node is replaced by a placeholder
 * `const` and its own GBNF rule (json-schema-rules.ts), which the worker splices into the
 * generator's grammar text. It is pure (no llama.cpp), so the scheduler can call it to
 * reject a request before queueing it.
 */

/** Keywords whose constraint the grammar cannot enforce. */
const UNSUPPORTED_KEYWORDS = new Set([
  "allOf",
  "not",
  "if",
  "then",
  "else",
  "patternProperties",
  "propertyNames",
  "dependencies",
  "dependentRequired",
  "dependentSchemas",
  "contains",
  "minContains",
  "maxContains",
  "unevaluatedProperties",
  "unevaluatedItems",
  "multipleOf",
  "$dynamicRef",
  "$recursiveRef",
]);

const BASIC_TYPES = new Set(["string", "number", "integer", "boolean", "null", "object", "array"]);
/** String formats the grammar generates; other formats are annotations and are dropped. */
const GRAMMAR_FORMATS = new Set(["date", "time", "date-time"]);
const MAX_DEPTH = 64;

/**
 * How big a `json_schema` response format may be. A grammar's cost is paid on every
 * generated token and grows with its alternatives: an `enum` of 20,000 strings took 18.4 s
 * for 8 tokens and stalled the other jobs of its worker. With at most 500 alternatives
 * per keyword, 8 tokens took 0.04 s on stories260K and 0.39 s on a 32,000-token vocabulary
 * (llama-2-tiny-random, CPU); see docs/security-limits.md.
 */
export const JSON_SCHEMA_LIMITS = {
  /** Most bytes of the schema as JSON. */
  maxBytes: 65_536,
  /** Deepest nesting of the schema's JSON (objects and arrays, annotations included). */
  maxJsonDepth: 128,
  /** Most alternatives one `enum`, `oneOf` or `anyOf` lists. */
  maxAlternatives: 500,
  /** Most alternatives in the whole schema: every `enum` value, `oneOf`/`anyOf` branch and `const`. */
  maxTotalAlternatives: 1000,
} as const;

type Schema = Record<string, unknown>;

/**
 * A schema ready for node-llama-cpp's grammar generator, and the GBNF rule of each slot:
 * the generator writes slot `i` as the literal of {@link slotConst}(i), which the worker
 * replaces with a reference to a rule `corral-slot-<i> ::= slots[i]`.
 */
export interface JsonSchemaGrammarPlan {
  schema: Schema;
  slots: string[];
}

/** The placeholder `const` of slot `i`. */
export const slotConst = (i: number): string => `corral-slot-${i}-f3b9c2`;
/** The GBNF rule name of slot `i`. */
export const slotRuleName = (i: number): string => `corral-slot-${i}`;

const NUMERIC_BOUNDS = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"] as const;

const isPlainObject = (value: unknown): value is Schema =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const escapePointer = (key: string): string => key.replaceAll("~", "~0").replaceAll("/", "~1");

/**
 * Checks that a `json_schema` response format can be enforced by a grammar and returns
 * the schema in the form node-llama-cpp's `createGrammarForJsonSchema` needs:
 * `anyOf` becomes `oneOf`, `definitions` becomes `$defs` (with `#/definitions/` refs
 * rewritten), unknown string formats are dropped, and a `type` list that mixes objects or
 * arrays with other types becomes a `oneOf`. Throws {@link UnsupportedSchemaError} naming
 * the offending keyword. Best effort: a schema it accepts yields output that validates,
 * but node-llama-cpp always emits every listed property, and never extra ones.
 */
export function normalizeJsonSchemaForGrammar(schema: unknown): Schema {
  return planJsonSchemaGrammar(schema).schema;
}

/**
 * {@link normalizeJsonSchemaForGrammar}, with the slots: strings with a `pattern` or an
 * `email`/`uuid` format and numbers with bounds, each enforced by its own GBNF rule.
 * @throws UnsupportedSchemaError naming the keyword and its path
 */
export function planJsonSchemaGrammar(schema: unknown): JsonSchemaGrammarPlan {
  if (!isPlainObject(schema)) throw new UnsupportedSchemaError("", "the schema must be a JSON object");
  checkSize(schema);
  const defNames = new Set<string>();
  for (const key of ["$defs", "definitions"]) {
    const defs = schema[key];
    if (defs === undefined) continue;
    if (!isPlainObject(defs)) throw new UnsupportedSchemaError(`/${key}`, `\`${key}\` must be an object`);
    for (const name of Object.keys(defs)) defNames.add(name);
  }
  const slots: string[] = [];
  return { schema: normalizeNode(schema, "", 0, defNames, slots, true), slots };
}

/**
 * The GBNF rule for a node the generator cannot enforce by itself, or null. A slot node
 * must be of one type and carry no other value constraint (an `enum`, a length next to a
 * pattern), since its rule replaces the whole node.
 */
function slotRule(node: Schema, pointer: string): string | null {
  const hasPattern = node.pattern !== undefined;
  const ruleFormat = typeof node.format === "string" && RULE_FORMATS.has(node.format) ? node.format : null;
  const bounds = NUMERIC_BOUNDS.filter((key) => node[key] !== undefined);
  if (!hasPattern && ruleFormat === null && bounds.length === 0) return null;
  const keyword = hasPattern ? "pattern" : ruleFormat !== null ? "format" : bounds[0]!;
  const at = `${pointer}/${keyword}`;
  for (const other of ["enum", "const", "oneOf", "anyOf", "$ref"]) {
    if (node[other] !== undefined)
      throw new UnsupportedSchemaError(pointer, `combining \`${keyword}\` with \`${other}\``);
  }
  if (hasPattern || ruleFormat !== null) {
    if (node.type !== undefined && node.type !== "string") {
      throw new UnsupportedSchemaError(at, `\`${keyword}\` is only enforced on \`type: "string"\``);
    }
    for (const other of ["minLength", "maxLength", ...NUMERIC_BOUNDS]) {
      if (node[other] !== undefined) {
        throw new UnsupportedSchemaError(
          pointer,
          `combining \`${keyword}\` with \`${other}\` cannot be enforced by a grammar`,
        );
      }
    }
    if (!hasPattern) return formatRule(ruleFormat!);
    if (typeof node.pattern !== "string") throw new UnsupportedSchemaError(at, "`pattern` must be a string");
    return patternRule(node.pattern, at);
  }
  if (node.type !== "integer" && node.type !== "number") {
    throw new UnsupportedSchemaError(
      at,
      `\`${keyword}\` is only enforced on \`type: "integer"\` or \`type: "number"\``,
    );
  }
  const numeric: NumericBounds = {};
  for (const key of bounds) {
    const value = node[key];
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new UnsupportedSchemaError(`${pointer}/${key}`, `\`${key}\` must be a number`);
    }
    numeric[key] = value;
  }
  return numberRule(node.type, numeric, at);
}

/**
 * Returns `null` when the schema can be enforced by a grammar, else the reason (the
 * message of the {@link UnsupportedSchemaError} that {@link normalizeJsonSchemaForGrammar}
 * would throw).
 */
export function validateJsonSchemaForGrammar(schema: unknown): string | null {
  try {
    normalizeJsonSchemaForGrammar(schema);
    return null;
  } catch (error) {
    if (error instanceof UnsupportedSchemaError) return error.message;
    throw error;
  }
}

function normalizeNode(
  node: unknown,
  pointer: string,
  depth: number,
  defNames: Set<string>,
  slots: string[],
  isRoot = false,
): Schema {
  if (depth > MAX_DEPTH) throw new UnsupportedSchemaError(pointer, `nesting deeper than ${MAX_DEPTH} levels`);
  if (node === true) return {};
  if (!isPlainObject(node)) {
    throw new UnsupportedSchemaError(pointer, node === false ? "a `false` schema allows nothing" : "not a schema");
  }
  for (const key of Object.keys(node)) {
    if (UNSUPPORTED_KEYWORDS.has(key)) {
      throw new UnsupportedSchemaError(
        `${pointer}/${escapePointer(key)}`,
        `\`${key}\` cannot be enforced by a grammar`,
      );
    }
  }
  const rule = slotRule(node, pointer);
  if (rule !== null) {
    slots.push(rule);
    return { const: slotConst(slots.length - 1) };
  }

  const out: Schema = {};
  for (const [key, value] of Object.entries(node)) {
    const at = `${pointer}/${escapePointer(key)}`;
    if (UNSUPPORTED_KEYWORDS.has(key)) {
      throw new UnsupportedSchemaError(at, `\`${key}\` cannot be enforced by a grammar`);
    }
    switch (key) {
      case "type":
        out.type = checkType(value, at);
        break;
      case "properties":
        if (!isPlainObject(value)) throw new UnsupportedSchemaError(at, "`properties` must be an object");
        out.properties = Object.fromEntries(
          Object.entries(value).map(([name, sub]) => [
            name,
            normalizeNode(sub, `${at}/${escapePointer(name)}`, depth + 1, defNames, slots),
          ]),
        );
        break;
      case "additionalProperties":
        out.additionalProperties =
          typeof value === "boolean" ? value : normalizeNode(value, at, depth + 1, defNames, slots);
        break;
      case "items":
        if (Array.isArray(value)) throw new UnsupportedSchemaError(at, "tuple `items` arrays: use `prefixItems`");
        if (value === false) break; // only prefixItems allowed, which is what the generator does with no items
        out.items = normalizeNode(value, at, depth + 1, defNames, slots);
        break;
      case "prefixItems":
      case "oneOf":
      case "anyOf": {
        if (!Array.isArray(value) || value.length === 0) {
          throw new UnsupportedSchemaError(at, `\`${key}\` must be a non-empty array`);
        }
        if (key !== "prefixItems") checkAlternatives(key, value.length, at);
        const target = key === "prefixItems" ? "prefixItems" : "oneOf";
        if (out[target] !== undefined) throw new UnsupportedSchemaError(at, "both `oneOf` and `anyOf`");
        out[target] = value.map((sub, i) => normalizeNode(sub, `${at}/${i}`, depth + 1, defNames, slots));
        break;
      }
      case "$defs":
      case "definitions": {
        if (!isPlainObject(value)) throw new UnsupportedSchemaError(at, `\`${key}\` must be an object`);
        if (!isRoot) throw new UnsupportedSchemaError(at, `\`${key}\` is only supported at the root`);
        const defs = (out.$defs ?? {}) as Schema;
        for (const [name, sub] of Object.entries(value)) {
          defs[name] = normalizeNode(sub, `${at}/${escapePointer(name)}`, depth + 1, defNames, slots);
        }
        out.$defs = defs;
        break;
      }
      case "$ref":
        out.$ref = checkRef(value, at, defNames);
        break;
      case "enum":
        if (!Array.isArray(value) || value.length === 0)
          throw new UnsupportedSchemaError(at, "`enum` must be a non-empty array");
        checkAlternatives(key, value.length, at);
        value.forEach((literal, i) => checkLiteral(literal, `${at}/${i}`));
        out.enum = value;
        break;
      case "const":
        checkLiteral(value, at);
        out.const = value;
        break;
      case "format":
        if (typeof value === "string" && GRAMMAR_FORMATS.has(value)) out.format = value;
        break;
      case "required":
        if (!Array.isArray(value) || !value.every((name) => typeof name === "string")) {
          throw new UnsupportedSchemaError(at, "`required` must be an array of property names");
        }
        out.required = value;
        break;
      case "uniqueItems":
        if (value === true) throw new UnsupportedSchemaError(at, "`uniqueItems` cannot be enforced by a grammar");
        break;
      case "minItems":
      case "maxItems":
      case "minLength":
      case "maxLength":
      case "minProperties":
      case "maxProperties":
        if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
          throw new UnsupportedSchemaError(at, `\`${key}\` must be a non-negative integer`);
        }
        out[key] = value;
        break;
      default:
        // Annotations (title, description, default, examples, $schema, $id, …) pass through,
        // as long as they nest no deeper than a schema may.
        if (exceedsJsonDepth(value, MAX_DEPTH)) {
          throw new UnsupportedSchemaError(at, `nesting deeper than ${MAX_DEPTH} levels`);
        }
        out[key] = value;
    }
  }

  checkCombination(out, pointer);
  return splitMixedTypeList(out, pointer);
}

/**
 * Enforces {@link JSON_SCHEMA_LIMITS} on the raw schema before it is walked: its JSON
 * depth (iteratively, so a schema nested 20,000 deep is refused rather than overflowing
 * the stack), its size, and the alternatives of the whole schema.
 */
function checkSize(schema: Schema): void {
  const { maxBytes, maxJsonDepth, maxTotalAlternatives } = JSON_SCHEMA_LIMITS;
  let alternatives = 0;
  let firstOver: string | null = null;
  const stack: { value: unknown; pointer: string; depth: number }[] = [{ value: schema, pointer: "", depth: 1 }];
  while (stack.length > 0) {
    const { value, pointer, depth } = stack.pop()!;
    if (typeof value !== "object" || value === null) continue;
    if (depth > maxJsonDepth) {
      throw new UnsupportedSchemaError(pointer, `nesting deeper than ${maxJsonDepth} levels of JSON`);
    }
    const entries: [string, unknown][] = Array.isArray(value)
      ? value.map((item, i) => [String(i), item])
      : Object.entries(value);
    for (const [key, child] of entries) {
      const at = `${pointer}/${escapePointer(key)}`;
      if (!Array.isArray(value) && (key === "enum" || key === "oneOf" || key === "anyOf" || key === "const")) {
        const count = key === "const" ? 1 : Array.isArray(child) ? child.length : 0;
        if (key !== "const") checkAlternatives(key, count, at);
        alternatives += count;
        if (alternatives > maxTotalAlternatives && firstOver === null) firstOver = at;
      }
    }
    // Children in reverse, so they are walked in document order.
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, child] = entries[i]!;
      stack.push({ value: child, pointer: `${pointer}/${escapePointer(key)}`, depth: depth + 1 });
    }
  }
  const bytes = Buffer.byteLength(JSON.stringify(schema));
  if (bytes > maxBytes) {
    throw new UnsupportedSchemaError("", `${bytes} bytes of JSON; at most ${maxBytes} are allowed`);
  }
  if (firstOver !== null) {
    throw new UnsupportedSchemaError(
      firstOver,
      `the schema lists ${alternatives} alternatives (enum values, oneOf/anyOf branches, consts); at most ${maxTotalAlternatives} are allowed, as each one slows every generated token`,
    );
  }
}

function checkAlternatives(keyword: string, count: number, at: string): void {
  const max = JSON_SCHEMA_LIMITS.maxAlternatives;
  if (count > max) {
    throw new UnsupportedSchemaError(
      at,
      `\`${keyword}\` lists ${count} alternatives; at most ${max} are allowed, as each one slows every generated token`,
    );
  }
}

function checkType(value: unknown, at: string): string | string[] {
  const types = Array.isArray(value) ? value : [value];
  if (types.length === 0) throw new UnsupportedSchemaError(at, "`type` must not be empty");
  for (const type of types) {
    if (typeof type !== "string" || !BASIC_TYPES.has(type)) {
      throw new UnsupportedSchemaError(at, `unknown type ${JSON.stringify(type)}`);
    }
  }
  return Array.isArray(value) ? (value as string[]) : (value as string);
}

function checkRef(value: unknown, at: string, defNames: Set<string>): string {
  if (typeof value !== "string") throw new UnsupportedSchemaError(at, "`$ref` must be a string");
  const match = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(value);
  if (!match)
    throw new UnsupportedSchemaError(at, `only local refs of the form "#/$defs/Name" are supported, got "${value}"`);
  const name = (match[2] ?? "").replaceAll("~1", "/").replaceAll("~0", "~");
  if (!defNames.has(name)) throw new UnsupportedSchemaError(at, `"${value}" points to no definition`);
  return `#/$defs/${name}`;
}

function checkLiteral(value: unknown, at: string): void {
  if (value === null || ["string", "number", "boolean"].includes(typeof value)) return;
  throw new UnsupportedSchemaError(at, "only string, number, boolean or null literals are supported");
}

/** node-llama-cpp picks one of $ref, oneOf, const, enum, then `type`; anything mixed would be silently dropped. */
function checkCombination(node: Schema, pointer: string): void {
  const selectors = ["$ref", "oneOf", "const", "enum"].filter((key) => node[key] !== undefined);
  if (selectors.length > 1) {
    throw new UnsupportedSchemaError(pointer, `combining ${selectors.map((s) => `\`${s}\``).join(" and ")}`);
  }
  const structural = ["properties", "additionalProperties", "items", "prefixItems"].filter(
    (k) => node[k] !== undefined,
  );
  if (selectors.length === 1 && structural.length > 0) {
    throw new UnsupportedSchemaError(pointer, `combining \`${selectors[0]}\` with \`${structural[0]}\``);
  }
  const properties = node.properties as Schema | undefined;
  const required = node.required as string[] | undefined;
  if (required && node.additionalProperties !== true && !isPlainObject(node.additionalProperties)) {
    const missing = required.filter((name) => !properties || !(name in properties));
    if (missing.length > 0) {
      throw new UnsupportedSchemaError(
        pointer,
        `required ${missing.map((m) => `"${m}"`).join(", ")} not in \`properties\``,
      );
    }
  }
}

/** `type: ["object", "null"]` would only ever produce `null`; make it a `oneOf`. */
function splitMixedTypeList(node: Schema, pointer: string): Schema {
  const types = node.type;
  if (!Array.isArray(types) || types.length < 2 || !types.some((t) => t === "object" || t === "array")) return node;
  if (node.oneOf !== undefined) throw new UnsupportedSchemaError(pointer, "combining a `type` list with `oneOf`");
  const { type: _type, ...rest } = node;
  const annotations: Schema = {};
  const constraints: Schema = {};
  for (const [key, value] of Object.entries(rest)) {
    if (key === "title" || key === "description" || key === "$defs") annotations[key] = value;
    else constraints[key] = value;
  }
  return { ...annotations, oneOf: (types as string[]).map((type) => ({ ...constraints, type })) };
}
