import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { decideClaim, type LaneView, type LoadedView, type PolicyInput } from "./claim-policy.js";

const GiB = 1024 ** 3;
const NOW = 1_000_000;

const lane = (model: string, fields: Partial<LaneView> = {}): LaneView => ({
  lane: `lane:${model}`,
  model,
  waiting: 1,
  headPriority: 150,
  headTimestamp: NOW - 1000,
  requirementBytes: 2 * GiB,
  ...fields,
});

const loaded = (model: string, fields: Partial<LoadedView> = {}): LoadedView => ({
  model,
  sequences: 2,
  busySequences: 0,
  bytes: 2 * GiB,
  lastUsedAt: NOW - 5000,
  ...fields,
});

const input = (fields: Partial<PolicyInput>): PolicyInput => ({
  lanes: [],
  loaded: [],
  liveFreeBytes: 10 * GiB,
  reserveBytes: 1 * GiB,
  blocked: new Set(),
  canLoad: true,
  now: NOW,
  swapAfterMs: 30_000,
  ...fields,
});

describe("decideClaim", () => {
  test("waits when no lane has jobs", () => {
    assert.deepEqual(decideClaim(input({ lanes: [lane("a", { waiting: 0 })] })), { kind: "wait", reason: "no-work" });
  });

  test("stays with the loaded model while it has a free sequence, even when another lane has a better priority", () => {
    const decision = decideClaim(
      input({
        lanes: [lane("a", { headPriority: 1100 }), lane("b", { headPriority: 50 })],
        loaded: [loaded("a", { busySequences: 1 })],
      }),
    );
    assert.deepEqual(decision, { kind: "run", lane: "lane:a", model: "a" });
  });

  test("with a backlog on a loaded model whose sequences are all busy, waits instead of loading another", () => {
    const decision = decideClaim(input({ lanes: [lane("a"), lane("b")], loaded: [loaded("a", { busySequences: 2 })] }));
    assert.deepEqual(decision, { kind: "wait", reason: "busy" });
  });

  test("with nothing loaded, picks the best priority, then the oldest head job", () => {
    const decision = decideClaim(
      input({
        lanes: [
          lane("old-batch", { headPriority: 1050, headTimestamp: NOW - 20_000 }),
          lane("young", { headPriority: 150, headTimestamp: NOW - 100 }),
          lane("older", { headPriority: 150, headTimestamp: NOW - 500 }),
        ],
      }),
    );
    assert.deepEqual(decision, { kind: "load", lane: "lane:older", model: "older", evict: [] });
  });

  test("switches once the loaded model's lane is empty, unloading the idle model only when needed", () => {
    const roomy = decideClaim(
      input({ lanes: [lane("a", { waiting: 0 }), lane("b")], loaded: [loaded("a")], liveFreeBytes: 10 * GiB }),
    );
    assert.deepEqual(roomy, { kind: "load", lane: "lane:b", model: "b", evict: [] });

    const tight = decideClaim(
      input({
        lanes: [lane("a", { waiting: 0 }), lane("b", { requirementBytes: 3 * GiB })],
        loaded: [loaded("a", { bytes: 2 * GiB })],
        liveFreeBytes: 3 * GiB,
      }),
    );
    assert.deepEqual(tight, { kind: "load", lane: "lane:b", model: "b", evict: ["a"] });
  });

  test("evicts the least recently used idle models first, and no more than needed", () => {
    const decision = decideClaim(
      input({
        lanes: [lane("c", { requirementBytes: 4 * GiB })],
        loaded: [
          loaded("recent", { lastUsedAt: NOW - 10, bytes: 2 * GiB }),
          loaded("stale", { lastUsedAt: NOW - 60_000, bytes: 2 * GiB }),
          loaded("busy", { busySequences: 1, bytes: 2 * GiB }),
        ],
        liveFreeBytes: 3 * GiB,
        reserveBytes: 1 * GiB,
      }),
    );
    assert.deepEqual(decision, { kind: "load", lane: "lane:c", model: "c", evict: ["stale"] });
  });

  test("skips lanes that do not fit and takes the next one that does", () => {
    const decision = decideClaim(
      input({
        lanes: [
          lane("huge", { headPriority: 50, requirementBytes: 20 * GiB }),
          lane("small", { headPriority: 150, requirementBytes: 1 * GiB }),
        ],
        liveFreeBytes: 8 * GiB,
      }),
    );
    assert.deepEqual(decision, { kind: "load", lane: "lane:small", model: "small", evict: [] });
    assert.deepEqual(
      decideClaim(input({ lanes: [lane("huge", { requirementBytes: 20 * GiB })], liveFreeBytes: 8 * GiB })),
      { kind: "wait", reason: "no-work" },
    );
  });

  test("the reserve counts against the fit", () => {
    const lanes = [lane("m", { requirementBytes: 7 * GiB })];
    assert.equal(decideClaim(input({ lanes, liveFreeBytes: 8 * GiB, reserveBytes: 0 })).kind, "load");
    assert.equal(decideClaim(input({ lanes, liveFreeBytes: 8 * GiB, reserveBytes: 1.5 * GiB })).kind, "wait");
  });

  test("a lane that fits only after a busy model finishes waits, then loads with the eviction", () => {
    const lanes = [lane("b", { requirementBytes: 4 * GiB })];
    const busy = decideClaim(
      input({ lanes, loaded: [loaded("a", { busySequences: 1, bytes: 4 * GiB })], liveFreeBytes: 4.5 * GiB }),
    );
    assert.deepEqual(busy, { kind: "wait", reason: "no-fit" });
    const idle = decideClaim(input({ lanes, loaded: [loaded("a", { bytes: 4 * GiB })], liveFreeBytes: 4.5 * GiB }));
    assert.deepEqual(idle, { kind: "load", lane: "lane:b", model: "b", evict: ["a"] });
  });

  test("a head job that waited past the swap threshold overrides the loaded model's affinity", () => {
    const lanes = [
      lane("a", { headTimestamp: NOW - 1000 }),
      lane("b", { headTimestamp: NOW - 31_000, requirementBytes: 4 * GiB }),
    ];
    // b fits beside a: load it at once.
    assert.deepEqual(decideClaim(input({ lanes, loaded: [loaded("a", { busySequences: 1 })] })), {
      kind: "load",
      lane: "lane:b",
      model: "b",
      evict: [],
    });
    // b fits only without a, which is busy: stop claiming for a so it drains.
    assert.deepEqual(
      decideClaim(
        input({ lanes, loaded: [loaded("a", { busySequences: 1, bytes: 4 * GiB })], liveFreeBytes: 4.5 * GiB }),
      ),
      { kind: "wait", reason: "draining-for-swap" },
    );
    // a has drained: swap.
    assert.deepEqual(
      decideClaim(input({ lanes, loaded: [loaded("a", { bytes: 4 * GiB })], liveFreeBytes: 4.5 * GiB })),
      { kind: "load", lane: "lane:b", model: "b", evict: ["a"] },
    );
    // Below the threshold the loaded model keeps the slot.
    assert.deepEqual(
      decideClaim(
        input({ lanes, loaded: [loaded("a", { bytes: 4 * GiB })], liveFreeBytes: 4.5 * GiB, swapAfterMs: 60_000 }),
      ),
      { kind: "run", lane: "lane:a", model: "a" },
    );
  });

  test("models in out-of-memory cooldown are not loaded, but a loaded one keeps running", () => {
    const lanes = [lane("a"), lane("b")];
    assert.deepEqual(decideClaim(input({ lanes: [lane("b")], blocked: new Set(["b"]) })), {
      kind: "wait",
      reason: "no-work",
    });
    assert.deepEqual(decideClaim(input({ lanes, loaded: [loaded("a")], blocked: new Set(["a"]) })), {
      kind: "run",
      lane: "lane:a",
      model: "a",
    });
  });

  test("does not start a second load while one is in progress", () => {
    assert.deepEqual(decideClaim(input({ lanes: [lane("a")], canLoad: false })), { kind: "wait", reason: "loading" });
  });
});
