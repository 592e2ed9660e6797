import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { readLines, type FileLine } from "./read-lines.js";

const RUNS = { seed: 1616, numRuns: 150 };

/** Lines without line endings (any other Unicode, CR inside a line included). */
const lineText = fc.string({ unit: "grapheme", maxLength: 40 }).map((s) => s.replace(/[\n]/g, "").replace(/\r$/, ""));

test("property: readLines gives back the lines written, with numbers and end offsets, at any read size and limit", async () => {
  const dir = await mkdtemp(join(tmpdir(), "corral-lines-prop-"));
  try {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(lineText, { maxLength: 30 }),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 0, max: 60 }),
        async (lines, crlf, finalNewline, highWaterMark, maxLineBytes) => {
          const path = join(dir, `f${n++}.jsonl`);
          const eol = crlf ? "\r\n" : "\n";
          const text = lines.join(eol) + (finalNewline && lines.length > 0 ? eol : "");
          await writeFile(path, text);
          const read: FileLine[] = [];
          for await (const line of readLines(path, { highWaterMark, maxLineBytes })) read.push(line);
          // The lines a reader should see: a final line ending ends the last line, it starts none.
          const expected = text.split(eol);
          if (expected.at(-1) === "") expected.pop();
          assert.equal(read.length, expected.length);
          let offset = 0;
          read.forEach((line, i) => {
            const bytes = Buffer.byteLength(expected[i]!);
            offset = Math.min(offset + bytes + eol.length, Buffer.byteLength(text));
            assert.equal(line.number, i + 1);
            assert.equal(line.bytes, bytes);
            assert.equal(line.end, offset);
            assert.equal(line.tooLong, bytes > maxLineBytes);
            assert.equal(line.text, bytes > maxLineBytes ? "" : expected[i]);
          });
          await rm(path);
        },
      ),
      RUNS,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
