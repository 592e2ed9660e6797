import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { defaultReserveBytes } from "@corral/shared";
import { parseTopology } from "../gpu/index.js";
import { MIB, syntheticFixture } from "../gpu/test-support/fixtures.js";
import {
  notAllowed,
  placeModel,
  yieldToGroup,
  type PlacementDevice,
  type PlacementHost,
  type PlacementModel,
} from "./placement-policy.js";

const GiB = 1024 ** 3;

const device = (slot: string, gpuIndex: number | null, totalMib: number, fields: Partial<PlacementDevice> = {}) => ({
  slot,
  gpuIndex,
  name: "NVIDIA RTX A5000",
  mig: false,
  totalBytes: totalMib * MIB,
  freeBytes: totalMib * MIB,
  reserveBytes: defaultReserveBytes(totalMib * MIB),
  ...fields,
});
const host = (devices: PlacementDevice[], fields: Partial<PlacementHost> = {}): PlacementHost => ({
  host: "lab1",
  devices,
  topology: null,
  reservations: new Map(),
  ...fields,
});
const model = (id: string, requirementBytes: number, placement?: PlacementModel["placement"]): PlacementModel => ({
  id,
  requirementBytes,
  placement,
});

// The two RTX A5000 of the real `nvidia-smi -q -x` capture (dual-rtx-a5000_query-xml.xml), under load.
const a5000 = host([
  device("gpu0", 0, 24564, { freeBytes: 1678 * MIB }),
  device("gpu1", 1, 24564, { freeBytes: 6862 * MIB }),
]);
// The H100 MIG devices of the real capture (h100-mig_default-table_load.txt).
const h100Mig = host(
  [
    ["gpu0-mig0", 40448, 11091],
    ["gpu0-mig1", 20096, 17],
    ["gpu0-mig2", 9984, 9],
    ["gpu0-mig3", 9984, 9],
  ].map(([slot, total, used]) =>
    device(slot as string, 0, total as number, {
      name: "NVIDIA H100 80GB HBM3",
      mig: true,
      freeBytes: ((total as number) - (used as number)) * MIB,
    }),
  ),
);
const fourPcie = (free: number[] = [24, 24, 24, 24]) =>
  host(
    free.map((gib, i) => device(`gpu${i}`, i, 24564, { freeBytes: gib * 1024 * MIB })),
    { topology: parseTopology(syntheticFixture("synthetic-4gpu-pcie_topo-matrix.txt")) },
  );

describe("placeModel", () => {
  test("rule 3: a 40 GB model on the real 2× A5000 gets the group of two; it does not fit now under the capture's load", () => {
    const choice = placeModel(model("llama-70b", 40e9), a5000);
    assert.equal(choice.kind, "group");
    assert.deepEqual(choice.kind === "group" && [choice.best.slots, choice.best.gpus, choice.best.fitsNow], [
      ["gpu0", "gpu1"],
      [0, 1],
      false,
    ]);
    // Capacity keeps the reserve on each GPU: 2 × (24564 MiB − 1.6 GiB).
    assert.equal(
      choice.kind === "group" && choice.best.capacityBytes,
      2 * (24564 * MIB - defaultReserveBytes(24564 * MIB)),
    );
  });

  test("rule 2: a 4 GB model on the 2× A5000 runs on one GPU, the one with more free memory first", () => {
    const choice = placeModel(model("small", 4 * GiB), a5000);
    assert.equal(choice.kind, "slot");
    assert.deepEqual(choice.kind === "slot" && [choice.best.slots, choice.others.map((o) => o.slots)], [
      ["gpu1"],
      [["gpu0"]],
    ]);
  });

  test("rule 2: best fit: a model that fits the small GPU leaves the big one free", () => {
    const mixed = host([
      device("gpu0", 0, 81559, { name: "NVIDIA H100 80GB HBM3" }),
      device("gpu1", 1, 16376, { name: "NVIDIA GeForce RTX 4080 SUPER" }),
    ]);
    const choice = placeModel(model("8b", 9 * GiB), mixed);
    assert.deepEqual(choice.kind === "slot" && choice.best.slots, ["gpu1"]);
  });

  test("MIG devices of the real H100 capture: a model goes on one MIG device, never a group of them", () => {
    const fits = placeModel(model("30g", 30 * GiB), h100Mig);
    assert.deepEqual(fits.kind === "slot" && [fits.best.slots, fits.best.fitsNow], [["gpu0-mig0"], false]);
    const small = placeModel(model("9g", 9 * GiB), h100Mig);
    // 9 GiB fits a 1g.10gb device only without its reserve: best fit is then the 2g.20gb device.
    assert.deepEqual(small.kind === "slot" && small.best.slots, ["gpu0-mig1"]);
    const tooBig = placeModel(model("50g", 50 * GiB), h100Mig);
    assert.equal(tooBig.kind, "none");
    assert.match(tooBig.kind === "none" ? tooBig.reason : "", /MIG devices and the CPU do not group/);
  });

  test("rule 4 (synthetic 4-GPU PCIe topology): a group of two stays on one PCIe switch, the pair with more free first", () => {
    const even = placeModel(model("40g", 40e9), fourPcie());
    assert.deepEqual(even.kind === "group" && even.best.gpus, [0, 1]);
    const busyFirstPair = placeModel(model("40g", 40e9), fourPcie([10, 10, 20, 20]));
    assert.deepEqual(busyFirstPair.kind === "group" && busyFirstPair.best.gpus, [2, 3]);
    // A pair across the CPUs (0 and 2) would have the most free, but SYS ranks below PIX.
    const crossIsFreest = placeModel(model("40g", 40e9), fourPcie([23, 5, 23, 5]));
    assert.deepEqual(crossIsFreest.kind === "group" && crossIsFreest.best.gpus, [0, 1]);
  });

  test("rule 4 (synthetic 8-GPU NVLink topology): a group of four is one NVLink island", () => {
    const eight = host(
      Array.from({ length: 8 }, (_, i) => device(`gpu${i}`, i, 24564, { freeBytes: (i === 2 ? 1 : 20) * 1024 * MIB })),
      { topology: parseTopology(syntheticFixture("synthetic-8gpu-nvlink_topo-matrix.txt")) },
    );
    const choice = placeModel(model("80g", 80e9), eight);
    // Smallest group first (rule 3: 4 GPUs), then a whole island; island 4–7 has more free than 0–3.
    assert.deepEqual(choice.kind === "group" && choice.best.gpus, [4, 5, 6, 7]);
  });

  test("rule 5: the group leaves free the GPU that a waiting pinned model can use", () => {
    const three = host([0, 1, 2].map((i) => device(`gpu${i}`, i, 24564)));
    const pinnedToZero = model("embed", 2 * GiB, { gpus: [0] });
    const withWaiting = placeModel(model("40g", 40e9), three, [pinnedToZero]);
    assert.deepEqual(withWaiting.kind === "group" && withWaiting.best.gpus, [1, 2]);
    const alone = placeModel(model("40g", 40e9), three, []);
    assert.deepEqual(alone.kind === "group" && alone.best.gpus, [0, 1]);
  });

  test("none: the reason says what is missing", () => {
    const cases: [string, PlacementModel, PlacementHost, RegExp][] = [
      ["bigger than all GPUs together", model("120g", 120e9), a5000, /together hold 44\.8 GiB/],
      ["no slots", model("x", 1), host([]), /no slots/],
      ["pinned elsewhere", model("x", 1, { hosts: ["lab2"] }), a5000, /placement\.hosts is lab2, not lab1/],
      ["one GPU only", model("40g", 40e9), host([device("gpu0", 0, 24564)]), /fewer than two whole GPUs/],
      ["CPU", model("40g", 40e9), host([device("cpu0", null, 32768, { name: "cpu" })]), /do not group/],
    ];
    for (const [name, m, h, reason] of cases) {
      const choice = placeModel(m, h);
      assert.equal(choice.kind, "none", name);
      assert.match(choice.kind === "none" ? choice.reason : "", reason, name);
    }
  });

  test("a group never includes a GPU the model is pinned away from", () => {
    const three = host([0, 1, 2].map((i) => device(`gpu${i}`, i, 24564)));
    const choice = placeModel(model("40g", 40e9, { gpus: [1, 2] }), three);
    assert.deepEqual(choice.kind === "group" && choice.best.gpus, [1, 2]);
  });
});

describe("notAllowed (rule 1: pins and reservations)", () => {
  const gpu0 = device("gpu0", 0, 24564);
  const mig = device("gpu1-mig0", 1, 40448, { name: "NVIDIA H100 80GB HBM3", mig: true });
  const cpu = device("cpu0", null, 32768, { name: "cpu" });
  const reserved = host([gpu0, mig, cpu], { reservations: new Map([[0, ["llama-70b"]]]) });
  const cases: [string, PlacementModel, PlacementDevice, RegExp | null][] = [
    ["no pins, free GPU", model("m", 1), mig, null],
    ["no pins, reserved GPU", model("m", 1), gpu0, /GPU 0 is reserved for llama-70b/],
    ["the reserved-for model", model("llama-70b", 1), gpu0, null],
    ["host listed", model("m", 1, { hosts: ["lab1", "lab2"] }), mig, null],
    ["host not listed", model("m", 1, { hosts: ["lab2"] }), mig, /hosts is lab2, not lab1/],
    ["gpu name part, any case", model("m", 1, { gpu_names: ["h100"] }), mig, null],
    [
      "gpu name not matching",
      model("m", 1, { gpu_names: ["A100", "L40"] }),
      mig,
      /gpu_names \(A100, L40\) does not match/,
    ],
    ["gpu index of a MIG device's GPU", model("m", 1, { gpus: [1] }), mig, null],
    ["other gpu index", model("m", 1, { gpus: [0] }), mig, /gpus is 0, not 1/],
    ["min_vram met", model("m", 1, { min_vram_bytes: 39 * GiB }), mig, null],
    [
      "min_vram not met",
      model("m", 1, { min_vram_bytes: 48 * GiB }),
      mig,
      /min_vram is 48\.0 GiB, GPU 1 has 39\.5 GiB/,
    ],
    ["GPU pins on the CPU", model("m", 1, { gpus: [0] }), cpu, /asks for a GPU/],
    ["hosts only, on the CPU", model("m", 1, { hosts: ["lab1"] }), cpu, null],
  ];
  for (const [name, m, d, expected] of cases) {
    test(name, () => {
      const reason = notAllowed(m, reserved, d);
      if (expected === null) assert.equal(reason, null);
      else assert.match(reason ?? "", expected);
    });
  }
});

describe("yieldToGroup (rule 6)", () => {
  const cases: [string, number | null, number, boolean][] = [
    ["no group job waits", null, 1_000_000, false],
    ["waited less than the bound", 1000, 1000 + 59_999, false],
    ["waited the bound", 1000, 1000 + 60_000, true],
    ["waited longer", 1000, 1000 + 600_000, true],
  ];
  for (const [name, since, now, expected] of cases)
    test(name, () => assert.equal(yieldToGroup({ groupJobWaitingSince: since, now, groupDrainMs: 60_000 }), expected));

  /**
   * Two GPUs, small jobs of `runMs` arriving every `everyMs` and claimed by whichever GPU is
   * free; a group job arrives at t = 0, while both run small jobs, and starts when both GPUs are free at once. Returns
   * when it starts, or null when it never does within `horizonMs`.
   */
  function simulate(groupDrainMs: number | null, runMs: number, everyMs: number, horizonMs: number): number | null {
    // Small jobs already run on both GPUs, staggered, when the group job arrives.
    const busyUntil = [runMs, Math.floor(runMs / 2)];
    let queue = 0;
    for (let t = 0; t <= horizonMs; t += 1) {
      if (t % everyMs === 0) queue += 1;
      if (busyUntil.every((until) => until <= t)) return t;
      const yielding =
        groupDrainMs !== null && yieldToGroup({ groupJobWaitingSince: 0, now: t, groupDrainMs: groupDrainMs });
      for (let g = 0; g < 2; g++) {
        if (busyUntil[g]! <= t && queue > 0 && !yielding) {
          busyUntil[g] = t + runMs;
          queue -= 1;
        }
      }
    }
    return null;
  }

  test("without the rule, a stream of small jobs on two GPUs starves the group job", () => {
    // Small jobs of 700 ms every 400 ms: one GPU is always busy, both are never free together.
    assert.equal(simulate(null, 700, 400, 120_000), null);
  });

  test("with it, the group job starts within the bound plus one small job's run", () => {
    for (const [bound, run, every] of [
      [5_000, 700, 400],
      [30_000, 2_500, 300],
      [0, 900, 100],
    ] as const) {
      const started = simulate(bound, run, every, 120_000);
      assert.notEqual(started, null);
      assert.ok(started! <= bound + run, `bound ${bound}, runs of ${run}: started at ${started}`);
      assert.ok(started! >= Math.min(bound, run), `not before the bound or the running jobs' end (${started})`);
    }
  });
});
