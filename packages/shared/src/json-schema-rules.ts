import { UnsupportedSchemaError } from "./errors/unsupported-schema-error.js";

/**
 * GBNF rule bodies for the JSON Schema constraints node-llama-cpp's grammar generator does
 * not enforce: `pattern`, the `email` and `uuid` formats, and numeric bounds. Each body
 * produces a subset of the values the constraint allows, never a value outside it (a
 * grammar may be stricter than the schema, not looser). Pure: the scheduler runs the same
 * code to refuse a schema before queueing it.
 */

/** Code points a JSON string may hold unescaped are 0x20.. except `"` and `\`; those two are emitted escaped. */
const MAX_CODE_POINT = 0x10ffff;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

type Range = readonly [number, number];

/** Most extra repetitions of a character under `*`, `+` or `{n,}` in a `pattern`. */
const UNBOUNDED_CHARS = 16;
/** Most extra repetitions of a group under `*`, `+` or `{n,}` in a `pattern`. */
const UNBOUNDED_GROUPS = 3;

/** The JSON string of a quoted GBNF literal for the given text. */
const literal = (text: string): string => JSON.stringify(text);

/** A GBNF character-class item for one code point. */
function classChar(code: number): string {
  if ((code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a)) {
    return String.fromCodePoint(code);
  }
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

function mergeRanges(ranges: readonly Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

function complement(ranges: readonly Range[]): Range[] {
  const out: Range[] = [];
  let next = 0;
  for (const [lo, hi] of mergeRanges(ranges)) {
    if (lo > next) out.push([next, lo - 1]);
    next = Math.max(next, hi + 1);
  }
  if (next <= MAX_CODE_POINT) out.push([next, MAX_CODE_POINT]);
  return out;
}

function subtract(ranges: readonly Range[], remove: readonly Range[]): Range[] {
  const removed = complement(remove);
  const out: Range[] = [];
  for (const [lo, hi] of mergeRanges(ranges)) {
    for (const [rlo, rhi] of removed) {
      const a = Math.max(lo, rlo);
      const b = Math.min(hi, rhi);
      if (a <= b) out.push([a, b]);
    }
  }
  return out;
}

/** GBNF for one character of a JSON string drawn from `ranges`: controls left out, `"` and `\` escaped. */
function charSetRule(ranges: readonly Range[]): string {
  const merged = mergeRanges(ranges);
  const has = (code: number) => merged.some(([lo, hi]) => lo <= code && code <= hi);
  const plain = subtract(merged, [
    [0, 0x1f],
    [QUOTE, QUOTE],
    [BACKSLASH, BACKSLASH],
  ]);
  const alternatives: string[] = [];
  if (plain.length > 0) {
    alternatives.push(
      `[${plain.map(([lo, hi]) => (lo === hi ? classChar(lo) : `${classChar(lo)}-${classChar(hi)}`)).join("")}]`,
    );
  }
  if (has(QUOTE)) alternatives.push(literal('\\"'));
  if (has(BACKSLASH)) alternatives.push(literal("\\\\"));
  if (alternatives.length === 0) throw new Error("a character class that allows no character");
  return alternatives.length === 1 ? alternatives[0]! : `(${alternatives.join(" | ")})`;
}

const DIGIT: Range[] = [[0x30, 0x39]];
const WORD: Range[] = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
];
/** `\s` as a subset: the space alone (tabs and newlines would need escaping in JSON). */
const SPACE: Range[] = [[0x20, 0x20]];
/** `.`: any character but line terminators. */
const ANY: Range[] = complement([
  [0x0a, 0x0a],
  [0x0d, 0x0d],
  [0x2028, 0x2029],
]);

/**
 * Compiles a JSON Schema `pattern` (ECMA-262 syntax) to the GBNF of a JSON string (quotes
 * included) whose content matches it from start to end: literals, escapes (`\d \w \s`,
 * their negations, `\n \t \xHH \uHHHH`, escaped punctuation), classes `[…]` and `[^…]`,
 * `.`, groups `(…)` and `(?:…)`, `|`, and the quantifiers `* + ? {n} {n,} {n,m}` (lazy
 * or not). A match of the whole string is also a match of the unanchored pattern, so the
 * anchors `^`/`$` are optional. Unbounded repetition is capped: 16 more characters, or 3
 * more repetitions of a group. Lookarounds, backreferences and `\b` are refused.
 * @param at - JSON pointer of the `pattern` keyword, for the error.
 * @throws UnsupportedSchemaError
 */
export function patternRule(pattern: string, at: string): string {
  const parser = new PatternParser(pattern, at);
  const body = parser.parse();
  return `"\\"" ${body} "\\""`;
}

class PatternParser {
  #i = 0;
  readonly #p: string;
  readonly #at: string;

  constructor(pattern: string, at: string) {
    this.#p = pattern;
    this.#at = at;
  }

  parse(): string {
    const body = this.#alternation();
    if (this.#i < this.#p.length) this.#fail(`unexpected \`${this.#p[this.#i]}\` at ${this.#i}`);
    return body;
  }

  #fail(reason: string): never {
    throw new UnsupportedSchemaError(this.#at, `\`pattern\` ${JSON.stringify(this.#p)}: ${reason}`);
  }

  #alternation(): string {
    const branches = [this.#sequence()];
    while (this.#p[this.#i] === "|") {
      this.#i++;
      branches.push(this.#sequence());
    }
    return branches.length === 1 ? branches[0]! : `(${branches.join(" | ")})`;
  }

  #sequence(): string {
    const items: string[] = [];
    while (this.#i < this.#p.length) {
      const c = this.#p[this.#i]!;
      if (c === "|" || c === ")") break;
      if (c === "^") {
        if (items.length > 0) this.#fail("`^` in the middle of a branch");
        this.#i++;
        continue;
      }
      if (c === "$") {
        this.#i++;
        const next = this.#p[this.#i];
        if (next !== undefined && next !== "|" && next !== ")") this.#fail("`$` in the middle of a branch");
        continue;
      }
      const single = this.#p[this.#i] !== "(";
      const atom = this.#atom();
      items.push(this.#quantified(atom, single));
    }
    return items.length === 0 ? '""' : items.join(" ");
  }

  #quantified(atom: string, single: boolean): string {
    const c = this.#p[this.#i];
    let min: number;
    let max: number | null;
    if (c === "*" || c === "+" || c === "?") {
      this.#i++;
      min = c === "+" ? 1 : 0;
      max = c === "?" ? 1 : null;
    } else if (c === "{" && /^\{(\d+)(,(\d*))?\}/.test(this.#p.slice(this.#i))) {
      const match = /^\{(\d+)(,(\d*))?\}/.exec(this.#p.slice(this.#i))!;
      this.#i += match[0].length;
      min = Number(match[1]);
      max = match[2] === undefined ? min : match[3] === "" ? null : Number(match[3]);
      if (max !== null && max < min) this.#fail(`{${min},${max}} has its bounds reversed`);
      if (min > 1000 || (max ?? 0) > 1000) this.#fail("repetition counts above 1000");
    } else {
      return atom;
    }
    // Unbounded repetition is capped (a subset of the pattern's strings): a model that
    // cannot tell where to stop, such as a tiny or random one, would otherwise run to max_tokens.
    max ??= min + (single ? UNBOUNDED_CHARS : UNBOUNDED_GROUPS);
    const suffix = max === min ? `{${min}}` : max === 1 && min === 0 ? "?" : `{${min},${max}}`;
    if (this.#p[this.#i] === "?") this.#i++; // lazy: the same language
    const next = this.#p[this.#i];
    if (next !== undefined && "*+?".includes(next)) this.#fail("a quantifier after a quantifier");
    return `(${atom})${suffix}`;
  }

  #atom(): string {
    const c = this.#p[this.#i]!;
    if (c === "(") {
      this.#i++;
      if (this.#p[this.#i] === "?") {
        if (this.#p[this.#i + 1] !== ":") this.#fail("lookarounds and named groups cannot be enforced by a grammar");
        this.#i += 2;
      }
      const inner = this.#alternation();
      if (this.#p[this.#i] !== ")") this.#fail("an unclosed group");
      this.#i++;
      return `(${inner})`;
    }
    if (c === "[") return charSetRule(this.#charClass());
    if (c === ".") {
      this.#i++;
      return charSetRule(ANY);
    }
    if (c === "\\") {
      this.#i++;
      return charSetRule(this.#escape(false));
    }
    if ("*+?{".includes(c)) {
      if (c === "{" && !/^\{\d+(,\d*)?\}/.test(this.#p.slice(this.#i))) {
        this.#i++;
        return charSetRule([[0x7b, 0x7b]]);
      }
      this.#fail(`a quantifier \`${c}\` with nothing to repeat`);
    }
    if (c === ")") this.#fail("an unmatched `)`");
    const code = this.#p.codePointAt(this.#i)!;
    this.#i += code > 0xffff ? 2 : 1;
    return charSetRule([[code, code]]);
  }

  /** The ranges of an escape after its backslash. */
  #escape(inClass: boolean): Range[] {
    const c = this.#p[this.#i];
    if (c === undefined) this.#fail("a trailing backslash");
    this.#i++;
    switch (c) {
      case "d":
        return DIGIT;
      case "D":
        return complement(DIGIT);
      case "w":
        return WORD;
      case "W":
        return complement(WORD);
      case "s":
        return SPACE;
      case "S":
        return complement([
          [0x09, 0x0d],
          [0x20, 0x20],
          [0xa0, 0xa0],
          [0x2028, 0x2029],
          [0xfeff, 0xfeff],
        ]);
      case "n":
        return [[0x0a, 0x0a]];
      case "t":
        return [[0x09, 0x09]];
      case "r":
        return [[0x0d, 0x0d]];
      case "f":
        return [[0x0c, 0x0c]];
      case "v":
        return [[0x0b, 0x0b]];
      case "0":
        return [[0, 0]];
      case "x": {
        const hex = /^[0-9a-fA-F]{2}/.exec(this.#p.slice(this.#i));
        if (!hex) this.#fail("`\\x` needs two hex digits");
        this.#i += 2;
        const code = parseInt(hex[0], 16);
        return [[code, code]];
      }
      case "u": {
        const hex = /^[0-9a-fA-F]{4}/.exec(this.#p.slice(this.#i));
        if (!hex) this.#fail("`\\u` needs four hex digits");
        this.#i += 4;
        const code = parseInt(hex[0], 16);
        return [[code, code]];
      }
      case "b":
        if (inClass) return [[0x08, 0x08]];
        this.#fail("`\\b` (a word boundary) cannot be enforced by a grammar");
      // falls through (never reached: #fail throws)
      case "B":
        this.#fail("`\\B` cannot be enforced by a grammar");
      // falls through
      default:
        if (/[1-9]/.test(c)) this.#fail("backreferences cannot be enforced by a grammar");
        if (/[A-Za-z]/.test(c)) this.#fail(`the escape \`\\${c}\` is not supported`);
        return [[c.codePointAt(0)!, c.codePointAt(0)!]];
    }
  }

  #charClass(): Range[] {
    this.#i++; // [
    let negated = false;
    if (this.#p[this.#i] === "^") {
      negated = true;
      this.#i++;
    }
    const ranges: Range[] = [];
    while (this.#i < this.#p.length && this.#p[this.#i] !== "]") {
      const start = this.#classAtom();
      if (this.#p[this.#i] === "-" && this.#p[this.#i + 1] !== "]" && this.#i + 1 < this.#p.length) {
        this.#i++;
        const end = this.#classAtom();
        if (start.length !== 1 || end.length !== 1 || start[0]![0] !== start[0]![1] || end[0]![0] !== end[0]![1]) {
          this.#fail("a class range between classes");
        }
        const lo = start[0]![0];
        const hi = end[0]![0];
        if (hi < lo) this.#fail("a class range out of order");
        ranges.push([lo, hi]);
      } else {
        ranges.push(...start);
      }
    }
    if (this.#p[this.#i] !== "]") this.#fail("an unclosed character class");
    this.#i++;
    const set = negated ? complement(ranges) : ranges;
    if (subtract(set, [[0, 0x1f]]).length === 0) this.#fail("a character class that allows no character");
    return set;
  }

  #classAtom(): Range[] {
    const c = this.#p[this.#i]!;
    if (c === "\\") {
      this.#i++;
      return this.#escape(true);
    }
    const code = this.#p.codePointAt(this.#i)!;
    this.#i += code > 0xffff ? 2 : 1;
    return [[code, code]];
  }
}

/** The JSON string formats compiled here (node-llama-cpp's generator does date, time and date-time itself). */
export const RULE_FORMATS = new Set(["email", "uuid"]);

/**
 * GBNF for a string `format`: `uuid` as RFC 9562 (version 1–8, variant 10xx), `email` as a
 * dot-atom local part and a host of dot-separated labels ending in 2+ letters. Both are
 * within what zod's own `.uuid()` and `.email()` patterns accept.
 */
export function formatRule(format: string): string {
  const hex = "[0-9a-f]";
  if (format === "uuid") {
    return `"\\"" ${hex}{8} "-" ${hex}{4} "-" [1-8] ${hex}{3} "-" [89ab] ${hex}{3} "-" ${hex}{12} "\\""`;
  }
  if (format === "email") {
    const atom = "[A-Za-z0-9_+\\x2d]";
    const label = "[A-Za-z0-9] [A-Za-z0-9\\x2d]{0,15}";
    return `"\\"" ${atom}{1,16} ("." ${atom}{1,16}){0,2} "@" (${label} "."){1,3} [A-Za-z]{2,12} "\\""`;
  }
  throw new Error(`no rule for format ${format}`);
}

const digitClass = (lo: number, hi: number): string => (lo === hi ? `"${lo}"` : `[${lo}-${hi}]`);
const anyDigits = (count: number): string => (count === 0 ? "" : count === 1 ? " [0-9]" : ` [0-9]{${count}}`);

/**
 * Digits of every integer in [lo, hi], both written with the same number of digits: the
 * classic digit-by-digit split, so the rule grows with the digit count, not the range.
 */
function sameLength(lo: string, hi: string): string {
  if (lo === hi) return `"${lo}"`;
  const rest = lo.length - 1;
  const [l0, h0] = [Number(lo[0]), Number(hi[0])];
  const loRest = lo.slice(1);
  const hiRest = hi.slice(1);
  const loFloor = /^0*$/.test(loRest);
  const hiCeil = /^9*$/.test(hiRest);
  if (loFloor && hiCeil) return `${digitClass(l0, h0)}${anyDigits(rest)}`;
  if (l0 === h0) return `"${l0}" ${sameLength(loRest, hiRest)}`;
  const parts: string[] = [];
  let first = l0;
  let last = h0;
  if (!loFloor) {
    parts.push(`"${l0}" ${sameLength(loRest, "9".repeat(rest))}`);
    first++;
  }
  const tail = hiCeil ? null : `"${h0}" ${sameLength("0".repeat(rest), hiRest)}`;
  if (!hiCeil) last--;
  if (first <= last) parts.push(`${digitClass(first, last)}${anyDigits(rest)}`);
  if (tail !== null) parts.push(tail);
  return parts.length === 1 ? parts[0]! : `(${parts.join(" | ")})`;
}

/** The digits of every integer in [lo, hi], 0 ≤ lo, hi possibly Infinity; null when empty. */
function naturalRange(lo: bigint, hi: bigint | null): string | null {
  if (hi !== null && hi < lo) return null;
  const parts: string[] = [];
  const loDigits = lo.toString().length;
  const hiDigits = hi === null ? null : hi.toString().length;
  const lastLength = hiDigits ?? Math.max(loDigits, 1);
  for (let length = loDigits; length <= lastLength; length++) {
    const smallest = length === 1 ? 0n : 10n ** BigInt(length - 1);
    const largest = 10n ** BigInt(length) - 1n;
    const a = lo > smallest ? lo : smallest;
    const b = hi !== null && hi < largest ? hi : largest;
    if (a <= b) parts.push(sameLength(a.toString(), b.toString()));
  }
  // Unbounded above: every longer number too.
  if (hi === null) parts.push(`[1-9] [0-9]{${lastLength},}`);
  return parts.length === 1 ? parts[0]! : `(${parts.join(" | ")})`;
}

const toBigInt = (value: number): bigint | null => (Number.isFinite(value) ? BigInt(value) : null);

/** GBNF of every integer in [min, max] (either may be ±Infinity) in JSON's spelling; null when empty. */
function integerRange(min: number, max: number): string | null {
  const parts: string[] = [];
  // Negative part: -k for k in [max(1, -max), -min].
  if (min < 0) {
    const kLo = max >= 0 ? 1n : BigInt(-max);
    const negative = naturalRange(kLo < 1n ? 1n : kLo, toBigInt(-min));
    if (negative !== null) parts.push(`"-" ${negative}`);
  }
  if (max >= 0) {
    const nonNegative = naturalRange(min > 0 ? BigInt(min) : 0n, toBigInt(max));
    if (nonNegative !== null) parts.push(nonNegative);
  }
  if (parts.length === 0) return null;
  return parts.length === 1 ? parts[0]! : `(${parts.join(" | ")})`;
}

/** Bounds of a numeric schema node, as the keywords give them. */
export interface NumericBounds {
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
}

/**
 * GBNF for an `integer` or `number` with bounds (exclusive ones included). Integers: exactly
 * the integers in range. Numbers: the integers in range, and decimals `i.ddd` (up to 6 decimals) whose whole
 * interval (i, i+1) lies within it — a subset (0.5 and 1.5 for [0.5, 1.5] are left out, and
 * no exponents). Bounds beyond ±(2^53−1) are clamped to it.
 * @throws UnsupportedSchemaError when the range holds no value the rule can produce
 */
export function numberRule(type: "integer" | "number", bounds: NumericBounds, at: string): string {
  const safe = Number.MAX_SAFE_INTEGER;
  let lo = -Infinity;
  let hi = Infinity;
  if (bounds.minimum !== undefined) lo = Math.max(lo, Math.ceil(bounds.minimum));
  if (bounds.exclusiveMinimum !== undefined) lo = Math.max(lo, Math.floor(bounds.exclusiveMinimum) + 1);
  if (bounds.maximum !== undefined) hi = Math.min(hi, Math.floor(bounds.maximum));
  if (bounds.exclusiveMaximum !== undefined) hi = Math.min(hi, Math.ceil(bounds.exclusiveMaximum) - 1);
  lo = Math.max(lo, -safe);
  hi = Math.min(hi, safe);
  const integers = integerRange(lo, hi);
  if (type === "integer") {
    if (integers === null) throw new UnsupportedSchemaError(at, "the bounds allow no integer");
    return integers;
  }
  // Decimals i.ddd lie in [i, i+1): i itself must be allowed (i ≥ lo, the integer bound) and
  // i + 1 must not pass the real upper bound. -k.ddd lies in (-(k+1), -k]: -k ≤ hi, -(k+1) ≥ the real lower bound.
  const realLo = Math.max(bounds.minimum ?? -Infinity, bounds.exclusiveMinimum ?? -Infinity);
  const realHi = Math.min(bounds.maximum ?? Infinity, bounds.exclusiveMaximum ?? Infinity);
  const parts: string[] = [];
  if (integers !== null) parts.push(integers);
  const fraction = `"." [0-9]{1,6}`;
  const positive = integerRange(Math.max(0, lo), Math.min(safe, Math.floor(realHi) - 1));
  if (positive !== null) parts.push(`${positive} ${fraction}`);
  const negative = integerRange(Math.max(0, -hi), Math.min(safe, Math.floor(-realLo) - 1));
  if (negative !== null) parts.push(`"-" ${negative} ${fraction}`);
  // An integer exclusive bound e: the decimals just past it, e.ddd with a non-zero digit ((0, 1) has only these).
  const nonZero = `"." [0-9]{0,5} [1-9]`;
  const exMin = bounds.exclusiveMinimum;
  if (exMin !== undefined && Number.isInteger(exMin) && exMin >= 0 && exMin + 1 <= realHi && exMin <= safe) {
    parts.push(`"${exMin}" ${nonZero}`);
  }
  const exMax = bounds.exclusiveMaximum;
  if (exMax !== undefined && Number.isInteger(exMax) && exMax <= 0 && exMax - 1 >= realLo && -exMax <= safe) {
    parts.push(`"-${-exMax}" ${nonZero}`);
  }
  if (parts.length === 0) throw new UnsupportedSchemaError(at, "the bounds allow no number the grammar can write");
  return parts.length === 1 ? parts[0]! : `(${parts.join(" | ")})`;
}
