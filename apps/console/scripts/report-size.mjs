#!/usr/bin/env node
// Prints the console's first-load size, gzipped (index.html and every file it links), and
// fails the build when it is over the budget (200 KB, issue 23).
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const BUDGET_BYTES = 200 * 1024;
const dist = fileURLToPath(new URL("../dist/", import.meta.url));
const html = readFileSync(join(dist, "index.html"), "utf8");
const linked = [...html.matchAll(/(?:src|href)="\/console\/([^"]+)"/g)].map((m) => m[1]);
const files = ["index.html", ...new Set(linked)];
const all = readdirSync(join(dist, "assets")).map((name) => `assets/${name}`);
let total = 0;
const rows = [];
for (const file of files) {
  const bytes = readFileSync(join(dist, file));
  const gz = gzipSync(bytes, { level: 9 }).length;
  total += gz;
  rows.push(`  ${file.padEnd(40)} ${String(bytes.length).padStart(8)} B  ${String(gz).padStart(7)} B gzipped`);
}
console.log(`console first load (${files.length} files):`);
console.log(rows.join("\n"));
const verdict = total <= BUDGET_BYTES ? "within" : "OVER";
console.log(
  `console first load: ${(total / 1024).toFixed(1)} KB gzipped, ${verdict} the ${BUDGET_BYTES / 1024} KB budget (${all.length} asset files in all)`,
);
if (total > BUDGET_BYTES) process.exit(1);
