import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { idleWhileWaiting, runFigures } from "../../bench/lib/sim-analysis.js";
import type { SimJobEvent } from "../../bench/lib/sim-engine.js";
import { parseSizes } from "../../bench/cluster-sim.js";

const job = (id: string, createdAt: number, startedAt: number, endedAt: number, ok = true): SimJobEvent => ({
  id,
  slot: "s",
  createdAt,
  startedAt,
  endedAt,
  ok,
});

describe("cluster simulator figures", () => {
  test("counts slot time idle only while a job waits, up to the free sequences", () => {
    // One sequence. a runs 0–100; b waits 50–100 while the sequence is busy (no idle time
    // counts), then c waits 200–230 on an idle sequence (30 ms count).
    const events = [job("a", 0, 0, 100), job("b", 50, 100, 150), job("c", 200, 230, 300)];
    assert.equal(idleWhileWaiting(events, 1, 0, 300), 30);
    // Two sequences: b's wait now finds one free (50 ms more).
    assert.equal(idleWhileWaiting(events, 2, 0, 300), 80);
    // Only the window counts.
    assert.equal(idleWhileWaiting(events, 1, 210, 300), 20);
  });

  test("tells jobs completed once from jobs completed twice, cut-off runs and missing jobs", () => {
    const events = [
      job("a", 0, 10, 20),
      job("b", 0, 10, 20, false),
      job("b", 0, 30, 40),
      job("c", 0, 10, 20),
      job("c", 0, 50, 60),
      job("stranger", 0, 1, 2),
    ];
    const figures = runFigures({
      offered: 10,
      ids: ["a", "b", "c", "d"],
      events,
      capacity: 2,
      startedAt: 0,
      endAt: 1000,
    });
    assert.equal(figures.submitted, 4);
    assert.equal(figures.completed_once, 2);
    assert.equal(figures.completed_twice, 1);
    assert.equal(figures.runs_cut_off, 1);
    assert.equal(figures.missing, 1);
    assert.equal(figures.drained, false);
    // 3 jobs finished in the 1 s until the deadline.
    assert.equal(figures.achieved_per_s, 3);
  });

  test("reads sizes as slots x models", () => {
    assert.deepEqual(parseSizes("100x10, 500 x 100"), [
      { slots: 100, models: 10 },
      { slots: 500, models: 100 },
    ]);
    assert.throws(() => parseSizes("100"), /CORRAL_BENCH_SIM_SIZES/);
    assert.throws(() => parseSizes("0x10"), /CORRAL_BENCH_SIM_SIZES/);
  });
});
