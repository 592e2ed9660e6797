import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { SCHEDULER_ENV } from "@corral/scheduler";
import { WORKER_ENV } from "@corral/worker";
import { renderConfigurationDoc } from "../../scripts/config-docs.js";

const doc = readFileSync(new URL("../../docs/configuration.md", import.meta.url), "utf8");

test("docs/configuration.md matches the variables the code documents (regenerate with scripts/config-docs.ts)", async () => {
  assert.equal(doc, await renderConfigurationDoc());
});

test("every variable the scheduler and worker read appears in docs/configuration.md", () => {
  for (const { name } of [...SCHEDULER_ENV, ...WORKER_ENV]) assert.ok(doc.includes(`\`${name}\``), name);
});
