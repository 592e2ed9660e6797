import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JobPayload } from "@corral/shared";
import { pino } from "pino";
import { copyGgufWithChatTemplate } from "../../../../test/support/gguf-writer.js";
import { STORIES, TINY_RANDOM, repoRootDir, sharedModelsDir } from "../../../../test/support/models.js";
import { Engine, type LoadedModel } from "./index.js";

const logger = pino({ level: "silent" });

const chat = (overrides: Partial<JobPayload> = {}): JobPayload => ({
  id: "job-r1",
  tenant: "t1",
  model: "r1",
  file: "r1.gguf",
  source: "openai",
  kind: "chat",
  messages: [{ role: "user", content: "Once upon a time" }],
  max_tokens: 24,
  temperature: 0,
  stream: true,
  requirement_bytes: 0,
  created_at: Date.now(),
  ...overrides,
});

/** Runs a job, collecting what it streams: the answer's chunks and the thoughts' chunks apart. */
async function runStreamed(model: LoadedModel, job: JobPayload) {
  const text: string[] = [];
  const thoughts: string[] = [];
  const result = await model.run(job, {
    onText: (chunk) => text.push(chunk),
    onReasoning: (chunk) => thoughts.push(chunk),
  });
  return { result, text: text.join(""), thoughts: thoughts.join("") };
}

describe("Reasoning models: tiny weights under DeepSeek R1's real chat template (real llama.cpp, CPU)", () => {
  let engine: Engine;
  let dir: string;
  let r1Stories: LoadedModel;
  let r1Random: LoadedModel;
  let plain: LoadedModel;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "corral-reasoning-"));
    const template = await readFile(join(repoRootDir, "test/fixtures/chat-templates/deepseek-r1.jinja"), "utf8");
    for (const name of [STORIES, TINY_RANDOM]) {
      await copyGgufWithChatTemplate(join(sharedModelsDir(), `${name}.gguf`), join(dir, `${name}-r1.gguf`), template);
    }
    engine = await Engine.create({ gpu: false, threads: 1, logger });
    r1Stories = await engine.load({
      modelId: "stories-r1",
      path: join(dir, `${STORIES}-r1.gguf`),
      contextSize: 256,
      sequences: 1,
    });
    r1Random = await engine.load({
      modelId: "random-r1",
      path: join(dir, `${TINY_RANDOM}-r1.gguf`),
      contextSize: 256,
      sequences: 1,
    });
    plain = await engine.load({
      modelId: STORIES,
      path: join(sharedModelsDir(), `${STORIES}.gguf`),
      contextSize: 256,
      sequences: 1,
    });
  });
  after(async () => {
    await engine?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("R1's template is recognised as node-llama-cpp's DeepSeek template, which has thought segments", () => {
    for (const model of [r1Stories, r1Random]) {
      assert.equal(model.chatWrapperName, "DeepSeek", model.modelId);
      assert.equal(model.reasoning, true, model.modelId);
    }
    assert.equal(plain.chatWrapperName, "General");
    assert.equal(plain.reasoning, false);
  });

  test("the model thinks first: the thoughts come apart from the answer, and the budget closes the thought", async () => {
    for (const model of [r1Stories, r1Random]) {
      const { result, text, thoughts } = await runStreamed(model, chat({ reasoning_budget: 6, max_tokens: 24 }));
      assert.equal(result.usage.reasoning_tokens, 6, `${model.modelId}: the thought stops at its budget`);
      assert.equal(result.usage.completion_tokens, 24, "thoughts count in completion_tokens, as on OpenAI");
      assert.ok(result.reasoning && result.reasoning.length > 0, `${model.modelId}: thoughts ${result.reasoning}`);
      assert.ok(result.text.length > 0, `${model.modelId}: an answer follows the thought`);
      assert.ok(!result.text.includes("<think>") && !result.text.includes("</think>"), result.text);
      assert.equal(thoughts, result.reasoning, "the streamed thoughts add up to the result's");
      assert.equal(text, result.text, "the streamed answer adds up to the result's");
    }
  });

  test("a larger budget lets the thought run longer; the prompt counts the opened thought", async () => {
    const short = await r1Stories.run(chat({ reasoning_budget: 4, max_tokens: 20 }));
    const long = await r1Stories.run(chat({ reasoning_budget: 12, max_tokens: 20 }));
    assert.equal(short.usage.reasoning_tokens, 4);
    assert.equal(long.usage.reasoning_tokens, 12);
    assert.ok(long.reasoning!.startsWith(short.reasoning!), "greedy: the same thought, cut later");
    const off = await r1Stories.run(chat({ reasoning_budget: 0, max_tokens: 20 }));
    assert.ok(short.usage.prompt_tokens > off.usage.prompt_tokens, "the opened thought's <think> is prompt");
  });

  test("budget 0 turns thinking off: no thought, the whole output is the answer", async () => {
    const { result, thoughts } = await runStreamed(r1Stories, chat({ reasoning_budget: 0, max_tokens: 16 }));
    assert.equal(result.reasoning, "");
    assert.equal(result.usage.reasoning_tokens, 0);
    assert.equal(thoughts, "");
    assert.ok(result.text.length > 0);
  });

  test("under a response_format grammar the answer is the grammar's (no thought opened)", async () => {
    const result = await r1Stories.run(
      chat({ response_format: { type: "json_object" }, max_tokens: 64, reasoning_budget: 8 }),
    );
    assert.equal(result.reasoning, "");
    assert.equal(result.usage.reasoning_tokens, 0);
    if (result.finish_reason === "stop") assert.doesNotThrow(() => JSON.parse(result.text), result.text);
    else assert.ok(result.text.trimStart().startsWith("{"), result.text);
  });

  test("models without thought segments keep their results as they were: no reasoning, no reasoning_tokens", async () => {
    const result = await plain.run(chat({ model: STORIES, reasoning_budget: 8 }));
    assert.equal("reasoning" in result, false);
    assert.deepEqual(Object.keys(result.usage).sort(), ["completion_tokens", "prompt_tokens"]);
    const completion = await r1Stories.run(chat({ kind: "completion", messages: undefined, prompt: "Once" }));
    assert.equal("reasoning" in completion, false, "completions never reason");
  });
});
