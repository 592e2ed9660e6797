import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
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
      { text: "a", number: 1, end: 3 },
      { text: "bb", number: 2, end: 6 },
      { text: "", number: 3, end: 7 },
      { text: "ccc", number: 4, end: 10 },
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
