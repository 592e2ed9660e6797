import { test } from "node:test";
import assert from "node:assert/strict";
import { DecodeSlots } from "./decode-slots.js";

const ticks = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

test("DecodeSlots runs at most max tasks at once, the rest in arrival order, and frees a slot when a task throws", async () => {
  const slots = new DecodeSlots(2);
  const started: number[] = [];
  const release = new Map<number, () => void>();
  const tasks = Array.from({ length: 4 }, (_, i) =>
    slots.run(async () => {
      started.push(i);
      await new Promise<void>((resolve) => release.set(i, resolve));
      if (i === 0) throw new Error("bad file");
      return i;
    }),
  );
  const settled = Promise.allSettled(tasks);
  await ticks();
  assert.deepEqual(started, [0, 1], "two at once");
  release.get(0)!();
  await ticks();
  assert.deepEqual(started, [0, 1, 2], "a task that threw gave its slot to the next");
  release.get(2)!();
  await ticks();
  assert.deepEqual(started, [0, 1, 2, 3]);
  release.get(1)!();
  release.get(3)!();
  const results = await settled;
  assert.deepEqual(
    results.map((r) => r.status),
    ["rejected", "fulfilled", "fulfilled", "fulfilled"],
  );
  assert.equal(await slots.run(async () => "free again"), "free again");
  assert.throws(() => new DecodeSlots(0), RangeError);
});
