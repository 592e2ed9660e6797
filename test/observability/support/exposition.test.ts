import { test } from "node:test";
import assert from "node:assert/strict";
import { Counter, Histogram, Registry } from "prom-client";
import { parseExposition } from "./exposition.js";

test("parses prom-client output into families with types and label names", async () => {
  const registry = new Registry();
  const counter = new Counter({ name: "x_total", help: "X.", labelNames: ["model", "status"], registers: [registry] });
  counter.inc({ model: 'a "quoted", model', status: "ok" });
  const histogram = new Histogram({ name: "y_seconds", help: "Y.", labelNames: ["phase"], registers: [registry] });
  histogram.observe({ phase: "total" }, 0.2);
  new Counter({ name: "unused_total", help: "No children yet.", labelNames: ["model"], registers: [registry] });

  const families = parseExposition(await registry.metrics());
  assert.deepEqual([...families.keys()].sort(), ["unused_total", "x_total", "y_seconds"]);
  assert.equal(families.get("x_total")!.type, "counter");
  assert.deepEqual([...families.get("x_total")!.labels].sort(), ["model", "status"]);
  assert.equal(families.get("x_total")!.samples[0]!.labels.model, 'a "quoted", model');
  assert.equal(families.get("y_seconds")!.type, "histogram");
  assert.deepEqual([...families.get("y_seconds")!.labels], ["phase"]);
  assert.ok(families.get("y_seconds")!.samples.some((s) => s.name === "y_seconds_bucket" && s.labels.le === "+Inf"));
  assert.equal(families.get("unused_total")!.samples.length, 0);
});

test("rejects a malformed sample line", () => {
  assert.throws(() => parseExposition('m{a="1" b} 1\n'), /bad labels/);
});
