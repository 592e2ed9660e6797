import { afterEach, before, after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Slot } from "@corral/worker";
import { CPU0, STORIES, createHarness, type Harness } from "./support/harness.js";

const SYSTEM =
  "You are a storyteller for small children. Every story has a friendly animal and a happy ending. ".repeat(3);

// One slot in this process, with the real engine (llama.cpp on the CPU) and real Redis.
describe("a slot's prompt-prefix reuse counter", () => {
  let h: Harness;
  let slot: Slot | null = null;

  before(async () => {
    h = await createHarness({ label: "prefix-reuse-metrics" });
  });
  afterEach(async () => {
    await slot?.close(0);
    slot = null;
  });
  after(async () => {
    await h?.close();
  });

  /** Runs two jobs one after the other that share SYSTEM; returns the second's prompt tokens and the counter. */
  async function twoJobs(env: Record<string, string>): Promise<{ promptTokens: number; reused: number }> {
    slot = await Slot.start({ config: h.config(env), slot: CPU0, logger: h.logger });
    const first = await h.waitFor((await h.submit({ model: STORIES, prompt: `${SYSTEM}A dog`, max_tokens: 8 })).id);
    assert.equal(first.status, "succeeded");
    const second = await h.waitFor((await h.submit({ model: STORIES, prompt: `${SYSTEM}A cat`, max_tokens: 8 })).id);
    assert.equal(second.status, "succeeded");
    const counter = await slot.metrics.promptTokensReused.get();
    const reused = counter.values.find((v) => v.labels.model === STORIES)?.value ?? 0;
    return { promptTokens: second.result!.usage.prompt_tokens, reused };
  }

  test("counts the shared start's tokens the second job did not evaluate again", async () => {
    const { promptTokens, reused } = await twoJobs({});
    // The second job found all of SYSTEM in a sequence (the first job's, or the same one).
    assert.ok(reused > promptTokens / 2 && reused < promptTokens, `reused ${reused} of ${promptTokens}`);
  });

  test("counts nothing with CORRAL_PREFIX_REUSE=false", async () => {
    const { reused } = await twoJobs({ CORRAL_PREFIX_REUSE: "false" });
    assert.equal(reused, 0);
  });
});
