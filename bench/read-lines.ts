/**
 * How long `readLines` takes to turn down one long line, by line length: the time should
 * grow linearly (it was quadratic: 21.7 s for 64 MiB). Prints a table and writes JSON.
 *   node --import tsx bench/read-lines.ts [--out bench/results/read-lines.json]
 */
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readLines } from "@corral/scheduler";

const MiB = 1024 * 1024;
const sizes = [16, 32, 64].map((n) => n * MiB);
const limit = MiB;

const dir = await mkdtemp(join(tmpdir(), "corral-bench-lines-"));
const rows: { line_mib: number; seconds: number; mib_per_s: number; max_held_bytes: number }[] = [];
try {
  for (const size of sizes) {
    const path = join(dir, `line-${size}.jsonl`);
    const handle = await open(path, "w");
    const block = Buffer.alloc(MiB, "a");
    for (let written = 0; written < size; written += block.length) await handle.write(block);
    await handle.write("\n");
    await handle.close();
    const stats = { maxHeldBytes: 0 };
    const started = process.hrtime.bigint();
    let lines = 0;
    for await (const line of readLines(path, { maxLineBytes: limit, stats })) if (line.tooLong) lines++;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (lines !== 1) throw new Error(`expected one line turned down, got ${lines}`);
    rows.push({
      line_mib: size / MiB,
      seconds: Number(seconds.toFixed(3)),
      mib_per_s: Math.round(size / MiB / seconds),
      max_held_bytes: stats.maxHeldBytes,
    });
    await rm(path);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
console.table(rows);
const out = process.argv.includes("--out") ? process.argv[process.argv.indexOf("--out") + 1] : undefined;
if (out) await writeFile(out, JSON.stringify({ benchmark: "read-lines", limit_bytes: limit, rows }, null, 2) + "\n");
