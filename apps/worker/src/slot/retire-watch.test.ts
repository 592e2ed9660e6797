import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { RetireWatch } from "./retire-watch.js";

describe("RetireWatch", () => {
  test("a plain slot never retires on its own", () => {
    const watch = new RetireWatch({ startedAt: 0 });
    assert.equal(watch.watching, false);
    assert.equal(watch.check(0, 10 ** 9), null);
  });

  test("asked to retire, a slot goes at its first sample with no job running, not before", () => {
    const watch = new RetireWatch({ startedAt: 0 });
    watch.retire();
    assert.equal(watch.watching, true);
    assert.equal(watch.check(2, 100), null);
    assert.equal(watch.check(1, 200), null);
    assert.equal(watch.check(0, 300), "its GPU joins a group");
  });

  test("a group slot goes once it ran no job for retireWhenIdleMs, counted from its last job", () => {
    const watch = new RetireWatch({ startedAt: 1000, retireWhenIdleMs: 500 });
    assert.equal(watch.watching, true);
    assert.equal(watch.check(0, 1400), null, "idle since its start, not long enough");
    assert.equal(watch.check(1, 1450), null, "a job runs");
    assert.equal(watch.check(0, 1900), null, "idle 450 ms since the last sample with a job");
    assert.match(watch.check(0, 1950) ?? "", /ran no job for 500 ms/);
  });
});
