import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { validateInput } from "./validate-input.js";

const line = (custom_id: unknown, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ custom_id, method: "POST", url: "/v1/completions", body: { model: "m", prompt: "p" }, ...extra });

async function check(lines: string[], maxErrors?: number) {
  const dir = await mkdtemp(join(tmpdir(), "corral-validate-"));
  try {
    const path = join(dir, "in.jsonl");
    await writeFile(path, lines.join("\n") + "\n");
    return await validateInput(path, "/v1/completions", maxErrors === undefined ? {} : { maxErrors });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("a well-formed file passes, blank lines are not requests", async () => {
  assert.deepEqual(await check([line("a"), "", "  ", line("b")]), { total: 2, errors: [], omitted: 0 });
});

test("each structural fault is named with its line, in line order", async () => {
  const result = await check([
    line("a"),
    "[1,2]",
    line("b", { url: "/v1/chat/completions" }),
    line("a"),
    line(7),
    line("c", { body: "text" }),
    line("b"),
    line("a"),
  ]);
  assert.equal(result.total, 8);
  assert.deepEqual(
    result.errors.map((e) => [e.line, e.code]),
    [
      [2, "invalid_request"],
      [3, "mismatched_url"],
      [4, "duplicate_custom_id"],
      [5, "invalid_custom_id"],
      [6, "invalid_body"],
      [8, "duplicate_custom_id"],
    ],
  );
  assert.match(result.errors[2]!.message, /also used on line 1/);
  // Line 7 repeats "b" from line 3, whose url is wrong: line 3 is not a valid request, so "b" is not a duplicate.
});

test("past maxErrors the rest are counted, not listed; an empty file is an error", async () => {
  const many = Array.from({ length: 30 }, () => "nope");
  const result = await check(many, 10);
  assert.equal(result.errors.length, 10);
  assert.equal(result.omitted, 20);
  const empty = await check([""]);
  assert.deepEqual(
    empty.errors.map((e) => e.code),
    ["empty_file"],
  );
});
