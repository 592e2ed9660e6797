import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdtemp, rm, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { STORIES, sharedModelsDir } from "../../../../test/support/models.js";
import { Engine } from "./index.js";
import { ThreadCalibrationCache, pickThreads, threadCandidates, type ThreadChoice } from "./thread-calibration.js";

describe("pickThreads", () => {
  test("keeps the candidate with the fastest median", () => {
    const choice = pickThreads([
      { threads: 1, tokensPerSecond: 450 },
      { threads: 2, tokensPerSecond: 35 },
      { threads: 1, tokensPerSecond: 400 },
      { threads: 2, tokensPerSecond: 31 },
      { threads: 1, tokensPerSecond: 20 }, // one run hit by a neighbour: the median ignores it
      { threads: 2, tokensPerSecond: 38 },
    ]);
    assert.equal(choice.threads, 1);
    assert.deepEqual(choice.medians, [
      { threads: 1, tokensPerSecond: 400 },
      { threads: 2, tokensPerSecond: 35 },
    ]);
  });

  test("more threads win when clearly faster (a large model on idle cores)", () => {
    const samples = [1, 2, 3].flatMap(() => [
      { threads: 1, tokensPerSecond: 5 },
      { threads: 8, tokensPerSecond: 22 },
    ]);
    assert.equal(pickThreads(samples).threads, 8);
  });

  test("within 5% of the best, the fewer threads win", () => {
    assert.equal(
      pickThreads([
        { threads: 1, tokensPerSecond: 96 },
        { threads: 4, tokensPerSecond: 100 },
      ]).threads,
      1,
    );
    assert.equal(
      pickThreads([
        { threads: 1, tokensPerSecond: 94 },
        { threads: 4, tokensPerSecond: 100 },
      ]).threads,
      4,
    );
  });

  test("refuses no samples", () => {
    assert.throws(() => pickThreads([]), RangeError);
  });

  test("candidates: 1 and the slot's share, or just 1", () => {
    assert.deepEqual(threadCandidates(2), [1, 2]);
    assert.deepEqual(threadCandidates(1), [1]);
  });
});

describe("ThreadCalibrationCache", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "corral-threads-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("times a file once, again when it is replaced, and forgets a failure", async () => {
    const file = join(dir, "m.gguf");
    await copyFile(join(sharedModelsDir(), `${STORIES}.gguf`), file);
    const cache = new ThreadCalibrationCache();
    let calls = 0;
    const calibrate = (threads: number) => async (): Promise<ThreadChoice> => {
      calls++;
      return { threads, medians: [] };
    };
    assert.deepEqual(await cache.choose(file, calibrate(1)), { threads: 1, medians: [], cached: false });
    assert.deepEqual(await cache.choose(file, calibrate(2)), { threads: 1, medians: [], cached: true });
    assert.equal(calls, 1);

    await utimes(file, new Date(), new Date(Date.now() + 5000));
    assert.equal((await cache.choose(file, calibrate(2))).threads, 2);
    assert.equal(calls, 2);

    const other = join(dir, "other.gguf");
    await copyFile(file, other);
    await assert.rejects(
      cache.choose(other, () => Promise.reject(new Error("no memory"))),
      /no memory/,
    );
    assert.equal((await cache.choose(other, calibrate(2))).cached, false);
  });
});

describe("Engine with calibrateThreads on stories260K (real llama.cpp, CPU)", () => {
  const logger = pino({ level: "silent" });
  const path = join(sharedModelsDir(), `${STORIES}.gguf`);

  test("a model loads with one of the candidates, and a second load reuses the choice", async () => {
    const engine = await Engine.create({ gpu: false, threads: 2, calibrateThreads: true, logger });
    try {
      const first = await engine.load({ modelId: STORIES, path, contextSize: 256, sequences: 1 });
      assert.ok([1, 2].includes(first.threads), `threads ${first.threads}`);
      const result = await first.run({
        id: "j1",
        tenant: "t",
        model: STORIES,
        file: `${STORIES}.gguf`,
        source: "native",
        kind: "completion",
        prompt: "Once upon a time",
        max_tokens: 8,
        temperature: 0,
        stream: false,
        requirement_bytes: 0,
        created_at: Date.now(),
      });
      assert.ok(result.usage.completion_tokens > 0);
      await first.dispose();
      const second = await engine.load({ modelId: STORIES, path, contextSize: 256, sequences: 1 });
      assert.equal(second.threads, first.threads);
    } finally {
      await engine.close();
    }
  });

  test("without calibrateThreads, or at 1 thread, the configured count is used", async () => {
    const engine = await Engine.create({ gpu: false, threads: 2, logger });
    try {
      const model = await engine.load({ modelId: STORIES, path, contextSize: 256, sequences: 1 });
      assert.equal(model.threads, 2);
    } finally {
      await engine.close();
    }
  });
});
