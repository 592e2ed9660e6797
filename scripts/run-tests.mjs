#!/usr/bin/env node
// Runs every test file with node's test runner through tsx, and lets node print its
// own summary. Unit tests sit beside their sources (*.test.ts); cross-app tests live
// in test/. The fault suite (test/faults: Redis topologies, failovers, kills) runs only
// with --faults (`npm run test:faults`). Usage: node scripts/run-tests.mjs [--faults] [filter…]
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const faults = process.argv.includes("--faults");
const faultsDir = join(root, "test", "faults");
const roots = faults ? ["test/faults"] : ["packages", "apps", "test"];
const skip = new Set(["node_modules", "dist", ".git", "fixtures"]);

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (skip.has(name)) continue;
    const path = join(dir, name);
    if (!faults && path === faultsDir) continue;
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith(".test.ts")) out.push(relative(root, path));
  }
  return out;
}

const filters = process.argv.slice(2).filter((arg) => arg !== "--faults");
const files = roots
  .flatMap((r) => walk(join(root, r), []))
  .filter((f) => filters.length === 0 || filters.some((flt) => f.includes(flt)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(" ")}`);
  process.exit(1);
}
// Fault cases start whole Redis topologies and kill processes: one at a time.
const concurrency = process.env.CORRAL_TEST_CONCURRENCY ?? (faults ? "1" : "2");
const child = spawn(
  process.execPath,
  [
    "--import",
    "tsx",
    "--test",
    `--test-concurrency=${concurrency}`,
    "--test-reporter=spec",
    // A fault case kills Redis nodes on purpose; a client some library left reconnecting to
    // one must not keep the file's process alive once its tests are done.
    ...(faults ? ["--test-force-exit"] : []),
    ...files,
  ],
  { cwd: root, stdio: "inherit" },
);
child.on("exit", (code, signal) => process.exit(signal ? 1 : (code ?? 1)));
