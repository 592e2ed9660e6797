import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import type { ChatMessage, JobPayload } from "@corral/shared";
import type { Token } from "node-llama-cpp";
import { pino } from "pino";
import { STORIES, sharedModelsDir } from "../../../../test/support/models.js";
import { Engine, type EngineResult, type LoadedModel } from "./index.js";
import { MIN_EVALUATED, commonPrefixLength } from "./prefix-reuse.js";

const logger = pino({ level: "silent" });
const storiesPath = join(sharedModelsDir(), `${STORIES}.gguf`);

/** A long shared start, as a batch's system prompt would be (about 150 tokens). */
const SYSTEM =
  "You are a storyteller for small children. Every story has a girl or a boy, a friendly animal, a park, " +
  "a sunny day, and a happy ending. Use short words and short sentences. ".repeat(3);

const job = (overrides: Partial<JobPayload> = {}): JobPayload => ({
  id: "job-1",
  tenant: "t1",
  model: STORIES,
  file: `${STORIES}.gguf`,
  source: "native",
  kind: "completion",
  prompt: `${SYSTEM}Once upon a time`,
  max_tokens: 24,
  temperature: 0,
  stream: false,
  requirement_bytes: 0,
  created_at: Date.now(),
  ...overrides,
});

const chat = (question: string): Partial<JobPayload> => ({
  kind: "chat",
  prompt: undefined,
  messages: [
    { role: "system", content: SYSTEM },
    { role: "user", content: question },
  ] satisfies ChatMessage[],
});

/** What a result says, timings aside. */
const output = (result: EngineResult) => ({
  text: result.text,
  finish_reason: result.finish_reason,
  usage: result.usage,
  logprobs: result.logprobs,
});

describe("prefix reuse on stories260K (real llama.cpp, CPU)", () => {
  let reuseEngine: Engine;
  let clearEngine: Engine;
  /** One sequence, prefix reuse on: every job lands on the sequence the previous one left. */
  let reusing: LoadedModel;
  /** The same model with reuse off: every sequence is cleared after each job. */
  let clearing: LoadedModel;

  before(async () => {
    reuseEngine = await Engine.create({ gpu: false, threads: 1, logger });
    clearEngine = await Engine.create({ gpu: false, threads: 1, logger, prefixReuse: false });
    reusing = await reuseEngine.load({ modelId: STORIES, path: storiesPath, contextSize: 512, sequences: 1 });
    clearing = await clearEngine.load({ modelId: STORIES, path: storiesPath, contextSize: 512, sequences: 1 });
  });
  after(async () => {
    await reuseEngine.close();
    await clearEngine.close();
  });

  /** Runs the job on both models, asserts the same output, and returns the reusing model's result. */
  async function sameOnBoth(overrides: Partial<JobPayload>): Promise<EngineResult> {
    const reused = await reusing.run(job(overrides));
    const cleared = await clearing.run(job(overrides));
    assert.deepEqual(output(reused), output(cleared));
    assert.equal(cleared.reused_prompt_tokens, 0, "reuse off: nothing is kept");
    return reused;
  }

  test("greedy output is the same with a reused prefix as on a cleared sequence", async () => {
    const first = await sameOnBoth({ prompt: `${SYSTEM}Once upon a time, a girl` });
    const second = await sameOnBoth({ prompt: `${SYSTEM}One day, a boy` });
    assert.ok(first.text.length > 0 && second.text.length > 0);

    // The shared start's tokens were kept: all of SYSTEM's but the one the join may merge.
    const system = (await clearing.run(job({ prompt: SYSTEM, max_tokens: 1 }))).usage.prompt_tokens;
    const reused = second.reused_prompt_tokens ?? 0;
    assert.ok(reused >= system - 2, `reused ${reused} of the ${system} tokens of the shared start`);
    assert.ok(reused < second.usage.prompt_tokens - 3, "the prompt's own end was evaluated");

    // The same prompt again: all of it is kept but its last MIN_EVALUATED tokens, evaluated
    // in one batch as on a cleared sequence (a batch of one token can change a greedy choice).
    const again = await sameOnBoth({ prompt: `${SYSTEM}One day, a boy` });
    assert.equal(again.reused_prompt_tokens, again.usage.prompt_tokens - MIN_EVALUATED);
  });

  test("a different prompt on the same sequence keeps only the tokens it shares", async () => {
    await sameOnBoth({ prompt: `${SYSTEM}The cat` });
    const other = await sameOnBoth({ prompt: "Once upon a time" });
    assert.ok(other.text.startsWith(", there was a little girl named Lily"), other.text);
    assert.equal(other.reused_prompt_tokens, 1, "only the beginning token is shared");
  });

  test("chats that share a system message reuse it and answer as without reuse", async () => {
    await sameOnBoth(chat("Tell me about a dog."));
    const second = await sameOnBoth(chat("Tell me about a cat in the park."));
    assert.ok((second.reused_prompt_tokens ?? 0) > 100, `reused ${second.reused_prompt_tokens}`);
  });

  test("a chat's next turn reuses the previous turn, the model's answer included", async () => {
    const turn1: ChatMessage[] = [
      { role: "system", content: SYSTEM },
      { role: "user", content: "Tell me about a fox." },
    ];
    const first = await sameOnBoth({ kind: "chat", prompt: undefined, messages: turn1 });
    const turn2: ChatMessage[] = [
      ...turn1,
      { role: "assistant", content: first.text },
      { role: "user", content: "And then?" },
    ];
    const second = await sameOnBoth({ kind: "chat", prompt: undefined, messages: turn2 });
    const reused = second.reused_prompt_tokens ?? 0;
    assert.ok(
      reused > first.usage.prompt_tokens,
      `reused ${reused}, the first turn's prompt ${first.usage.prompt_tokens}`,
    );
  });

  test("JSON-schema grammar jobs and logprobs give the same result with a reused prefix", async () => {
    const schema = {
      type: "json_schema" as const,
      json_schema: {
        name: "pet",
        schema: {
          type: "object",
          properties: { name: { type: "string", maxLength: 8 } },
          required: ["name"],
          additionalProperties: false,
        },
      },
    };
    await sameOnBoth({ prompt: `${SYSTEM}The dog's name:`, response_format: schema });
    const grammar = await sameOnBoth({ prompt: `${SYSTEM}The cat's name:`, response_format: schema });
    assert.ok((grammar.reused_prompt_tokens ?? 0) > 100);
    assert.deepEqual(Object.keys(JSON.parse(grammar.text) as object), ["name"]);

    const withLogprobs = await sameOnBoth({ prompt: `${SYSTEM}A bird`, logprobs: true, top_logprobs: 3 });
    assert.ok((withLogprobs.reused_prompt_tokens ?? 0) > 100);
    assert.equal(withLogprobs.logprobs?.length, withLogprobs.usage.completion_tokens);
  });

  test("penalties, and seeded sampling above temperature 0, give the same result with a reused prefix", async () => {
    const penalized = await sameOnBoth({
      prompt: `${SYSTEM}A mouse`,
      frequency_penalty: 0.8,
      presence_penalty: 0.4,
    });
    assert.ok((penalized.reused_prompt_tokens ?? 0) > 100);
    const seeded = await sameOnBoth({ prompt: `${SYSTEM}A horse`, temperature: 0.9, seed: 7 });
    assert.ok((seeded.reused_prompt_tokens ?? 0) > 100);
  });

  test("a cancelled job's sequence is cleared: the next job evaluates its whole prompt", async () => {
    await reusing.run(job({ prompt: `${SYSTEM}A frog` }));
    const controller = new AbortController();
    const cancelled = await reusing.run(job({ prompt: `${SYSTEM}A frog jumped`, max_tokens: 64 }), {
      signal: controller.signal,
      onText: () => controller.abort(),
    });
    assert.equal(cancelled.finish_reason, "cancelled");
    assert.ok((cancelled.reused_prompt_tokens ?? 0) > 100, "it did reuse the prefix before it was cancelled");

    const next = await sameOnBoth({ prompt: `${SYSTEM}A frog jumped` });
    assert.equal(next.reused_prompt_tokens, 0, "nothing kept from a cancelled job");
  });

  test("a job cancelled while its prompt is evaluated leaves nothing to reuse", async () => {
    await reusing.run(job({ prompt: `${SYSTEM}A duck` }));
    // A fresh start of ~450 tokens takes far longer than the abort below to evaluate; wherever
    // the abort lands (prompt or generation), the job is cancelled and its sequence cleared.
    const long = `${SYSTEM.repeat(3)}A duck`;
    const controller = new AbortController();
    setImmediate(() => controller.abort());
    const cancelled = await reusing.run(job({ prompt: long, max_tokens: 16 }), { signal: controller.signal });
    assert.equal(cancelled.finish_reason, "cancelled");
    const next = await sameOnBoth({ prompt: long, max_tokens: 16 });
    assert.equal(next.reused_prompt_tokens, 0, "nothing kept from a half-evaluated prompt");
  });

  test("a job that fails leaves a cleared sequence, and the next one runs as on a fresh one", async () => {
    await reusing.run(job({ prompt: `${SYSTEM}A fish` }));
    // Too long for the context: it fails once it holds the sequence.
    await assert.rejects(reusing.run(job({ prompt: `${SYSTEM}A fish`.repeat(8) })), { name: "PromptTooLongError" });
    const next = await sameOnBoth({ prompt: `${SYSTEM}A fish` });
    assert.equal(next.reused_prompt_tokens, 0, "nothing kept after a failed job");
  });
});

describe("the sequence pool prefers the sequence holding the prompt's prefix", () => {
  let engine: Engine;
  let model: LoadedModel;

  before(async () => {
    engine = await Engine.create({ gpu: false, threads: 1, logger });
    model = await engine.load({ modelId: STORIES, path: storiesPath, contextSize: 512, sequences: 2 });
  });
  after(async () => {
    await engine.close();
  });

  test("two jobs in a row with one prefix both land on the sequence that holds it", async () => {
    const dogs = `${SYSTEM}Dogs: `;
    const cats = `Cats live in houses and sleep in the sun. `.repeat(6);
    // Both sequences busy at once: one ends up holding each start.
    await Promise.all([model.run(job({ prompt: `${dogs}one` })), model.run(job({ prompt: `${cats}one` }))]);
    // First come first served would hand these two different sequences (the one just
    // released goes to the back of the free list); the preference sends both to the dogs'.
    const second = await model.run(job({ prompt: `${dogs}two` }));
    const third = await model.run(job({ prompt: `${dogs}three` }));
    assert.ok((second.reused_prompt_tokens ?? 0) > 100, `second reused ${second.reused_prompt_tokens}`);
    assert.ok((third.reused_prompt_tokens ?? 0) > 100, `third reused ${third.reused_prompt_tokens}`);
    const catsAgain = await model.run(job({ prompt: `${cats}two` }));
    assert.ok((catsAgain.reused_prompt_tokens ?? 0) > 50, `cats reused ${catsAgain.reused_prompt_tokens}`);
  });
});

describe("commonPrefixLength", () => {
  test("counts the leading tokens two lists share", () => {
    const t = (...n: number[]) => n as Token[];
    assert.equal(commonPrefixLength(t(1, 2, 3), t(1, 2, 4)), 2);
    assert.equal(commonPrefixLength(t(1, 2), t(1, 2, 3)), 2);
    assert.equal(commonPrefixLength(t(), t(1)), 0);
    assert.equal(commonPrefixLength(t(5), t(1)), 0);
  });
});
