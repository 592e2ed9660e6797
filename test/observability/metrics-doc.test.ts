// docs/metrics.md against what a real scheduler and a real worker export, both ways.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Registry, collectDefaultMetrics } from "prom-client";
import { METRIC } from "@corral/shared";
import { repoRootDir } from "../support/models.js";
import { parseExposition, type MetricFamily } from "./support/exposition.js";
import { runLoad, startStack, type Stack } from "./support/stack.js";

interface DocumentedMetric {
  name: string;
  type: string;
  labels: string[];
  process: "scheduler" | "worker";
  /** Listed under "## Planned": named in METRIC, not exported yet. */
  planned: boolean;
}

/** The catalogue table of docs/metrics.md: `| \`name\` | type | \`a\`, \`b\` | process | meaning |`. */
function documentedMetrics(): Map<string, DocumentedMetric> {
  const text = readFileSync(resolve(repoRootDir, "docs/metrics.md"), "utf8");
  const out = new Map<string, DocumentedMetric>();
  let section = "";
  for (const line of text.split("\n")) {
    if (line.startsWith("## ")) section = line.slice(3).trim();
    const cells = line.split("|").map((cell) => cell.trim());
    const name = /^`(corral_[a-z0-9_]+)`$/.exec(cells[1] ?? "")?.[1];
    if (!name) continue;
    const process = cells[4];
    assert.ok(process === "scheduler" || process === "worker", `docs/metrics.md: ${name} has process "${process}"`);
    assert.ok(!out.has(name), `docs/metrics.md lists ${name} twice`);
    out.set(name, {
      name,
      type: cells[2] ?? "",
      labels: [...(cells[3] ?? "").matchAll(/`([a-zA-Z_][a-zA-Z0-9_]*)`/g)].map((m) => m[1]!).sort(),
      process,
      planned: section === "Planned",
    });
  }
  return out;
}

/** prom-client's default metrics as the scheduler names them (`corral_scheduler_` prefix). */
async function schedulerDefaultMetricNames(): Promise<Set<string>> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "corral_scheduler_" });
  return new Set((await registry.getMetricsAsJSON()).map((metric) => metric.name));
}

async function scrape(url: string): Promise<Map<string, MetricFamily>> {
  const res = await fetch(url);
  assert.equal(res.status, 200, `GET ${url}`);
  return parseExposition(await res.text());
}

describe("docs/metrics.md matches the exported metrics", () => {
  let stack: Stack;
  const exported = new Map<"scheduler" | "worker", Map<string, MetricFamily>>();

  before(async () => {
    stack = await startStack();
    const outcome = await runLoad(stack);
    assert.deepEqual(outcome, { succeeded: 5, failed: 1 }, "the load's jobs");
    const defaults = await schedulerDefaultMetricNames();
    const scheduler = await scrape(`${stack.scheduler.url}/metrics`);
    for (const name of defaults) scheduler.delete(name);
    exported.set("scheduler", scheduler);
    exported.set("worker", await scrape(stack.worker.metricsUrl));
  });

  after(async () => {
    await stack?.close();
  });

  test("every exported corral_* family is documented with its type, labels and process", () => {
    const docs = documentedMetrics();
    const problems: string[] = [];
    for (const [process, families] of exported) {
      for (const family of families.values()) {
        if (!family.name.startsWith("corral_")) continue;
        const doc = docs.get(family.name);
        if (!doc) {
          problems.push(`${family.name} (${family.type}, exported by the ${process}) is not in docs/metrics.md`);
          continue;
        }
        if (doc.planned) {
          problems.push(`${family.name} is exported now: move it from "Planned" into the catalogue with its labels`);
          continue;
        }
        if (doc.type !== family.type) problems.push(`${family.name}: documented ${doc.type}, exported ${family.type}`);
        if (doc.process !== process)
          problems.push(`${family.name}: documented for the ${doc.process}, exported by the ${process}`);
        if (family.samples.length > 0) {
          const labels = [...family.labels].sort();
          if (labels.join(",") !== doc.labels.join(","))
            problems.push(`${family.name}: documented labels [${doc.labels}], exported [${labels}]`);
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  test("every documented metric is exported, by the process the docs name", (t) => {
    const problems: string[] = [];
    for (const doc of documentedMetrics().values()) {
      if (doc.planned) {
        t.diagnostic(`${doc.name}: planned, not required yet`);
        continue;
      }
      const family = exported.get(doc.process)!.get(doc.name);
      if (!family) {
        problems.push(`${doc.name} is documented for the ${doc.process} but not exported by it`);
        continue;
      }
      if (family.samples.length === 0) {
        // Labelled families without children yet (no OOM happened) show only HELP/TYPE.
        t.diagnostic(`${doc.name}: exported without samples; labels not checked`);
      }
    }
    assert.deepEqual(problems, []);
  });

  test("docs/metrics.md and METRIC name the same metrics", () => {
    const documented = [...documentedMetrics().keys()].sort();
    const constants = [...new Set(Object.values(METRIC))].sort();
    assert.deepEqual(documented, constants);
  });
});
