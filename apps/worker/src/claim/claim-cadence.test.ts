import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ClaimCadence, type CadenceStep } from "./claim-cadence.js";

const T0 = 1_000_000;
const READ = 250;
const REFRESH = 2000;
const A = "lane:a";
const B = "lane:b";

/** A cadence whose last full look at T0 chose lane A (model "a"); `othersWaiting` as given. */
function afterLook(othersWaiting = false): ClaimCadence {
  const cadence = new ClaimCadence({ laneReadMs: READ, catalogRefreshMs: REFRESH });
  assert.deepEqual(cadence.next({ now: T0, free: null }), { kind: "look" }, "no fast lane yet: a full look");
  cadence.looked({ now: T0, lane: A, model: "a", othersWaiting });
  return cadence;
}

const claim = (count: number): CadenceStep => ({ kind: "claim", lane: A, model: "a", count });
const LOOK: CadenceStep = { kind: "look" };
const NO_WORK: CadenceStep = { kind: "wait", reason: "no-work" };

/** Runs fast rounds at T0 + 1 with `free` sequences, each batch coming back with what `got` says; returns the batch sizes. */
function ramp(cadence: ClaimCadence, free: number, got: (want: number) => number, rounds: number): number[] {
  const sizes: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const step = cadence.next({ now: T0 + 1, free });
    assert.equal(step.kind, "claim", `round ${i}: ${JSON.stringify(step)}`);
    if (step.kind !== "claim") break;
    sizes.push(step.count);
    cadence.claimed(got(step.count));
  }
  return sizes;
}

describe("ClaimCadence", () => {
  describe("rule 1: a full look's run decision makes a fast lane for laneReadMs", () => {
    const cases: { name: string; now: number; expected: CadenceStep }[] = [
      { name: "right after the look: claim from the lane", now: T0, expected: claim(1) },
      { name: "just before laneReadMs: still claims", now: T0 + READ - 1, expected: claim(1) },
    ];
    for (const c of cases) {
      test(c.name, () => {
        assert.deepEqual(afterLook().next({ now: c.now, free: 4 }), c.expected);
      });
    }
    test("the fast lane's model is what the loop reports free sequences for", () => {
      const cadence = new ClaimCadence({ laneReadMs: READ, catalogRefreshMs: REFRESH });
      assert.equal(cadence.fastModel, null);
      cadence.looked({ now: T0, lane: A, model: "a", othersWaiting: false });
      assert.equal(cadence.fastModel, "a");
    });
  });

  describe("rule 2: when a round makes a full look", () => {
    const cases: { name: string; setup: (c: ClaimCadence) => void; now: number; free: number | null }[] = [
      { name: "the look's time is up (laneReadMs)", setup: () => {}, now: T0 + READ, free: 4 },
      { name: "a marker of another lane popped", setup: (c) => c.markerPopped(B), now: T0 + 1, free: 4 },
      { name: "the fast lane's model is no longer loaded (or is loading)", setup: () => {}, now: T0 + 1, free: null },
    ];
    for (const c of cases) {
      test(c.name, () => {
        const cadence = afterLook();
        c.setup(cadence);
        assert.deepEqual(cadence.next({ now: c.now, free: c.free }), LOOK);
        assert.equal(cadence.fastModel, null, "the fast lane is forgotten");
      });
    }
    test("a full look forgets the dry lane and starts the ramp again", () => {
      const cadence = afterLook();
      assert.deepEqual(
        ramp(cadence, 8, (want) => want, 3),
        [1, 1, 2],
      );
      cadence.foundEmpty(A);
      assert.deepEqual(cadence.next({ now: T0 + READ, free: 8 }), LOOK);
      cadence.looked({ now: T0 + READ, lane: A, model: "a", othersWaiting: false });
      assert.deepEqual(cadence.next({ now: T0 + READ + 1, free: 8 }), claim(1), "not dry, ramp at 1");
    });
  });

  test("rule 3: the fast lane's model has no free sequence: wait busy", () => {
    assert.deepEqual(afterLook().next({ now: T0 + 1, free: 0 }), { kind: "wait", reason: "busy" });
  });

  describe("rule 4: how many jobs a fast round claims at once", () => {
    const cases: { name: string; free: number; got: (want: number) => number; rounds: number; sizes: number[] }[] = [
      { name: "full batches ramp 1, 1, 2, 4, 8", free: 64, got: (want) => want, rounds: 5, sizes: [1, 1, 2, 4, 8] },
      {
        name: "capped by the free sequences; a full batch of every free sequence means a backlog: all of them from then on",
        free: 3,
        got: (want) => want,
        rounds: 5,
        sizes: [1, 1, 2, 3, 3],
      },
      {
        name: "a short batch starts the ramp again at 1",
        free: 8,
        got: (want) => (want === 2 ? 1 : want),
        rounds: 5,
        sizes: [1, 1, 2, 1, 1],
      },
    ];
    for (const c of cases) {
      test(c.name, () => {
        // Other lanes had work, so a short batch does not make the lane wait for markers (rule 5).
        assert.deepEqual(ramp(afterLook(true), c.free, c.got, c.rounds), c.sizes);
      });
    }
    test("with a backlog, every free sequence however many are free", () => {
      const cadence = afterLook(true);
      ramp(cadence, 2, (want) => want, 3); // 1, 1, 2 = every free sequence: a backlog
      assert.deepEqual(cadence.next({ now: T0 + 1, free: 5 }), claim(5));
      assert.deepEqual(cadence.claimed(5), { kind: "claimed" });
      assert.deepEqual(cadence.next({ now: T0 + 1, free: 7 }), claim(7));
      cadence.claimed(3);
      assert.deepEqual(cadence.next({ now: T0 + 1, free: 7 }), claim(1), "the backlog ran out: the ramp starts again");
    });
  });

  describe("rule 5: a dry fast lane waits for markers while no other lane had work", () => {
    const cases: {
      name: string;
      othersWaiting: boolean;
      dry: (c: ClaimCadence) => void;
      marker: string | null;
      expected: CadenceStep;
    }[] = [
      {
        name: "a short batch makes it dry: wait for markers",
        othersWaiting: false,
        // Batches of 1, 1, 2; the third brings one job.
        dry: (c) => ramp(c, 4, (want) => (want === 2 ? 1 : want), 3),
        marker: null,
        expected: NO_WORK,
      },
      {
        name: "a fetch-next completion that found nothing makes it dry",
        othersWaiting: false,
        dry: (c) => c.foundEmpty(A),
        marker: null,
        expected: NO_WORK,
      },
      {
        name: "the lane's own marker ends the dry spell",
        othersWaiting: false,
        dry: (c) => c.foundEmpty(A),
        marker: A,
        expected: claim(1),
      },
      {
        name: "a wait that timed out (no marker) keeps it dry",
        othersWaiting: false,
        dry: (c) => c.foundEmpty(A),
        marker: null,
        expected: NO_WORK,
      },
      {
        name: "when other lanes had work, a dry lane still claims",
        othersWaiting: true,
        dry: (c) => c.foundEmpty(A),
        marker: null,
        expected: claim(1),
      },
      {
        name: "another lane found empty does not make the fast lane dry",
        othersWaiting: false,
        dry: (c) => c.foundEmpty(B),
        marker: null,
        expected: claim(1),
      },
    ];
    for (const c of cases) {
      test(c.name, () => {
        const cadence = afterLook(c.othersWaiting);
        c.dry(cadence);
        cadence.markerPopped(c.marker);
        assert.deepEqual(cadence.next({ now: T0 + 2, free: 4 }), c.expected);
      });
    }
  });

  describe("rule 6: a fast batch that took nothing", () => {
    const cases: { name: string; othersWaiting: boolean; expected: ReturnType<ClaimCadence["claimed"]> }[] = [
      {
        name: "waits for markers when no other lane had work",
        othersWaiting: false,
        expected: { kind: "wait", reason: "no-work" },
      },
      { name: "makes a full look when other lanes had work", othersWaiting: true, expected: { kind: "look" } },
    ];
    for (const c of cases) {
      test(c.name, () => {
        const cadence = afterLook(c.othersWaiting);
        assert.deepEqual(cadence.next({ now: T0 + 1, free: 4 }), claim(1));
        assert.deepEqual(cadence.claimed(0), c.expected);
        if (c.expected.kind === "look") assert.equal(cadence.fastModel, null, "the fast lane is forgotten");
      });
    }
    test("a batch that took some jobs counts as claimed", () => {
      const cadence = afterLook();
      ramp(cadence, 8, (want) => want, 3); // the next batch asks for 4
      assert.deepEqual(cadence.next({ now: T0 + 1, free: 8 }), claim(4));
      assert.deepEqual(cadence.claimed(2), { kind: "claimed" });
    });
  });

  describe("rule 7: the fast lane's own marker extends a look whose time is up", () => {
    const cases: {
      name: string;
      othersWaiting: boolean;
      marker: string | null;
      now: number;
      expected: CadenceStep;
    }[] = [
      {
        name: "own marker, no other lane had work: claims",
        othersWaiting: false,
        marker: A,
        now: T0 + 1000,
        expected: claim(1),
      },
      {
        name: "up to catalogRefreshMs after the look",
        othersWaiting: false,
        marker: A,
        now: T0 + REFRESH - 1,
        expected: claim(1),
      },
      {
        name: "not once the look is catalogRefreshMs old",
        othersWaiting: false,
        marker: A,
        now: T0 + REFRESH,
        expected: LOOK,
      },
      { name: "not when other lanes had work", othersWaiting: true, marker: A, now: T0 + 1000, expected: LOOK },
      {
        name: "not without a marker (the wait timed out)",
        othersWaiting: false,
        marker: null,
        now: T0 + 1000,
        expected: LOOK,
      },
      { name: "not by another lane's marker", othersWaiting: false, marker: B, now: T0 + 1000, expected: LOOK },
    ];
    for (const c of cases) {
      test(c.name, () => {
        const cadence = afterLook(c.othersWaiting);
        cadence.markerPopped(c.marker);
        assert.deepEqual(cadence.next({ now: c.now, free: 4 }), c.expected);
      });
    }
    test("the extension counts laneReadMs from the wake-up", () => {
      const cadence = afterLook();
      cadence.markerPopped(A);
      const woken = T0 + 1000;
      assert.deepEqual(cadence.next({ now: woken, free: 4 }), claim(1));
      cadence.claimed(1);
      assert.deepEqual(cadence.next({ now: woken + READ - 1, free: 4 }), claim(1));
      cadence.claimed(1);
      assert.deepEqual(cadence.next({ now: woken + READ, free: 4 }), LOOK);
    });
  });

  describe("rule 8: a finished job's sequence takes the lane's next job", () => {
    const take = { now: T0 + 1, lane: A, model: "a", modelLoaded: true };
    const cases: {
      name: string;
      setup?: (c: ClaimCadence) => void;
      input?: Partial<typeof take>;
      expected: boolean;
    }[] = [
      { name: "on the fast lane while its look counts", expected: true },
      { name: "after its own lane's marker", setup: (c) => c.markerPopped(A), expected: true },
      { name: "not once the look's time is up", input: { now: T0 + READ }, expected: false },
      { name: "not on another lane", input: { lane: B }, expected: false },
      { name: "not after another lane's marker", setup: (c) => c.markerPopped(B), expected: false },
      { name: "not for a job that ran on another model", input: { model: "b" }, expected: false },
      { name: "not when its model is no longer the one loaded", input: { modelLoaded: false }, expected: false },
      {
        name: "not after a full look forgot the fast lane",
        setup: (c) => assert.deepEqual(c.next({ now: T0 + READ, free: 4 }), LOOK),
        expected: false,
      },
    ];
    for (const c of cases) {
      test(c.name, () => {
        const cadence = afterLook();
        c.setup?.(cadence);
        assert.equal(cadence.mayTakeNext({ ...take, ...c.input }), c.expected);
      });
    }
    test("never before any look", () => {
      const cadence = new ClaimCadence({ laneReadMs: READ, catalogRefreshMs: REFRESH });
      assert.equal(cadence.mayTakeNext(take), false);
    });
  });
});
