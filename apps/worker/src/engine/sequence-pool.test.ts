import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { SequencePool } from "./sequence-pool.js";

describe("SequencePool", () => {
  test("hands out free items, then queues acquirers first come first served", async () => {
    const pool = new SequencePool(["s0", "s1"]);
    assert.equal(await pool.acquire(), "s0");
    assert.equal(await pool.acquire(), "s1");
    assert.equal(pool.busy, 2);

    const order: string[] = [];
    const a = pool.acquire().then((item) => order.push(`a:${item}`));
    const b = pool.acquire().then((item) => order.push(`b:${item}`));
    assert.equal(pool.waiting, 2);

    pool.release("s1");
    pool.release("s0");
    await Promise.all([a, b]);
    assert.deepEqual(order, ["a:s1", "b:s0"]);
    assert.equal(pool.busy, 2);
    assert.equal(pool.waiting, 0);

    pool.release("s1");
    pool.release("s0");
    assert.equal(pool.busy, 0);
  });

  test("an aborted wait leaves the queue with the signal's reason", async () => {
    const pool = new SequencePool(["only"]);
    await pool.acquire();
    const controller = new AbortController();
    const waiting = pool.acquire(controller.signal);
    const next = pool.acquire();
    controller.abort(new Error("cancelled by client"));
    await assert.rejects(waiting, /cancelled by client/);
    assert.equal(pool.waiting, 1);
    pool.release("only");
    assert.equal(await next, "only", "the next waiter gets the item, not the aborted one");
    await assert.rejects(pool.acquire(AbortSignal.abort(new Error("already"))), /already/);
  });

  test("close rejects waiters and later acquires", async () => {
    const pool = new SequencePool([1]);
    await pool.acquire();
    const waiting = pool.acquire();
    pool.close(() => new Error("closed"));
    pool.close(() => new Error("closed twice"));
    await assert.rejects(waiting, /^Error: closed$/);
    await assert.rejects(pool.acquire(), /^Error: closed$/);
    pool.release(1);
    assert.equal(pool.busy, 0);
  });

  test("a preference takes the free item scored highest, the longest-free among equals", async () => {
    const pool = new SequencePool(["a", "b", "c"]);
    const scores: Record<string, number> = { a: 1, b: 5, c: 5 };
    assert.equal(await pool.acquire(undefined, (item) => scores[item]!), "b");
    assert.equal(await pool.acquire(undefined, () => 0), "a", "all equal: the first free");
    pool.release("b");
    // Free: c, b. Both score 5; c has been free longer.
    assert.equal(await pool.acquire(undefined, (item) => scores[item]!), "c");
    assert.equal(await pool.acquire(undefined, (item) => scores[item]!), "b");

    // With nothing free the preference does not hold a job back: it takes what comes first.
    const waiting = pool.acquire(undefined, (item) => (item === "c" ? 10 : 0));
    pool.release("a");
    assert.equal(await waiting, "a");
  });

  test("needs at least one item", () => {
    assert.throws(() => new SequencePool([]), RangeError);
  });
});
