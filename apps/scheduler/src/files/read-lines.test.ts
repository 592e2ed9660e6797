import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readLines } from "./read-lines.js";

async function withFile(content: string | Buffer, run: (path: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "corral-lines-"));
  try {
    const path = join(dir, "f.jsonl");
    await writeFile(path, content);
    await run(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const collect = async (path: string, options = {}) => {
  const out = [];
  for await (const line of readLines(path, options)) out.push(line);
  return out;
};

test("yields each line with its number and end offset, for LF, CRLF, blank lines and a last line without newline", async () => {
  await withFile("a\r\nbb\n\nccc", async (path) => {
    assert.deepEqual(await collect(path), [
      { text: "a", number: 1, end: 3, bytes: 1, tooLong: false },
      { text: "bb", number: 2, end: 6, bytes: 2, tooLong: false },
      { text: "", number: 3, end: 7, bytes: 0, tooLong: false },
      { text: "ccc", number: 4, end: 10, bytes: 3, tooLong: false },
    ]);
  });
});

test("resumes from a saved offset and line number, across read buffers and multi-byte characters", async () => {
  const lines = Array.from({ length: 50 }, (_, i) => `{"n":${i},"s":"é✓${"x".repeat(i)}"}`);
  await withFile(lines.join("\n") + "\n", async (path) => {
    const all = await collect(path, { highWaterMark: 7 });
    assert.deepEqual(
      all.map((l) => l.text),
      lines,
    );
    const from = all[19]!;
    const rest = await collect(path, { start: from.end, firstLine: from.number + 1, highWaterMark: 13 });
    assert.deepEqual(rest, all.slice(20));
  });
});

test("an empty file yields nothing", async () => {
  await withFile("", async (path) => assert.deepEqual(await collect(path), []));
});

test("a line over maxLineBytes is yielded as tooLong, with its number, length and end, and never held whole", async () => {
  const long = "x".repeat(10_000);
  await withFile(`short\n${long}\r\nafter\n${"y".repeat(101)}`, async (path) => {
    const stats = { maxHeldBytes: 0 };
    const lines = await collect(path, { maxLineBytes: 100, highWaterMark: 64, stats });
    assert.deepEqual(lines, [
      { text: "short", number: 1, end: 6, bytes: 5, tooLong: false },
      { text: "", number: 2, end: 6 + 10_002, bytes: 10_000, tooLong: true },
      { text: "after", number: 3, end: 6 + 10_002 + 6, bytes: 5, tooLong: false },
      { text: "", number: 4, end: 6 + 10_002 + 6 + 101, bytes: 101, tooLong: true },
    ]);
    assert.ok(stats.maxHeldBytes <= 100 + 1 + 64, `held ${stats.maxHeldBytes} bytes`);
  });
  await withFile(`${"z".repeat(100)}\r\n`, async (path) => {
    assert.deepEqual(await collect(path, { maxLineBytes: 100, highWaterMark: 7 }), [
      { text: "z".repeat(100), number: 1, end: 102, bytes: 100, tooLong: false },
    ]);
  });
});

test("a 64 MiB single-line file is turned down line by line, holding at most the limit plus one read", async () => {
  const dir = await mkdtemp(join(tmpdir(), "corral-lines-"));
  try {
    const path = join(dir, "big.jsonl");
    const size = 64 * 1024 * 1024;
    const handle = await open(path, "w");
    const block = Buffer.alloc(1024 * 1024, "a");
    for (let written = 0; written < size; written += block.length) await handle.write(block);
    await handle.write("\nnext\n");
    await handle.close();
    const stats = { maxHeldBytes: 0 };
    const limit = 1024 * 1024;
    const lines = await collect(path, { maxLineBytes: limit, stats });
    assert.deepEqual(lines, [
      { text: "", number: 1, end: size + 1, bytes: size, tooLong: true },
      { text: "next", number: 2, end: size + 6, bytes: 4, tooLong: false },
    ]);
    assert.ok(stats.maxHeldBytes <= limit + 64 * 1024, `held ${stats.maxHeldBytes} bytes`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
