import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv } from "ajv";
import type { JobChatMessage, JobPayload, JobTools } from "@corral/shared";
import { ChatPlanner, acquireLlama, chatWrapperFor, type ChatPlan, type LlamaLease } from "@corral/llama";
import type { LlamaModel } from "node-llama-cpp";
import { pino } from "pino";
import { copyGgufWithChatTemplate } from "../../../../test/support/gguf-writer.js";
import { STORIES, TINY_RANDOM, repoRootDir, sharedModelsDir } from "../../../../test/support/models.js";
import { Engine, type LoadedModel } from "./index.js";

const logger = pino({ level: "silent" });

// Strings, enums and booleans: node-llama-cpp's grammar for an unbounded `integer` also admits
// exponents (`1e-4`, `1e999`), so those are left out of what the tests validate (see docs/api.md).
const WEATHER = {
  type: "object",
  properties: { city: { type: "string", enum: ["Paris", "Rome", "Oslo"] }, metric: { type: "boolean" } },
  required: ["city", "metric"],
  additionalProperties: false,
};
const SEARCH = {
  type: "object",
  properties: { query: { type: "string", maxLength: 24 }, exact: { type: "boolean" } },
  required: ["query", "exact"],
  additionalProperties: false,
};
const tools = (overrides: Partial<JobTools> = {}): JobTools => ({
  functions: [
    { name: "get_weather", description: "Weather in a city", parameters: WEATHER },
    { name: "search", description: "Searches the web", parameters: SEARCH },
  ],
  required: false,
  max_calls: 8,
  ...overrides,
});
const ASK: JobChatMessage[] = [{ role: "user", content: "What is the weather in Paris?" }];
/** A conversation where the assistant called two tools and got both results. */
const ANSWERED: JobChatMessage[] = [
  ...ASK,
  {
    role: "assistant",
    content: "",
    tool_calls: [
      { id: "call_a", name: "get_weather", arguments: '{"city":"Paris","metric":true}' },
      { id: "call_b", name: "search", arguments: '{"query":"Paris","exact":false}' },
    ],
  },
  { role: "tool", content: '{"sky":"clear"}', tool_call_id: "call_a", name: "get_weather" },
  { role: "tool", content: "no results", tool_call_id: "call_b", name: "search" },
];

const chat = (overrides: Partial<JobPayload> = {}): JobPayload => ({
  id: "job-tools",
  tenant: "t1",
  model: "qwen",
  file: "qwen.gguf",
  source: "openai",
  kind: "chat",
  messages: ASK,
  max_tokens: 240,
  temperature: 0.8,
  stream: false,
  requirement_bytes: 0,
  created_at: Date.now(),
  tools: tools(),
  ...overrides,
});

/** The prompt text a plan feeds the model, as node-llama-cpp renders it (functions documented). */
const promptText = (plan: ChatPlan): string =>
  plan.chatWrapper
    .generateContextState({
      chatHistory: plan.history,
      ...(plan.functions ? { availableFunctions: plan.functions.functions, documentFunctionParams: true } : {}),
    })
    .contextText.toString();

describe("Tool calls in the chat template's own syntax: tiny weights under Qwen 2.5's real template (real llama.cpp, CPU)", () => {
  let engine: Engine;
  let dir: string;
  let lease: LlamaLease;
  let qwenStories: LoadedModel;
  let qwenRandom: LoadedModel;
  let plain: LoadedModel;
  /** Vocabulary-only copies for planning (what the scheduler's prompt-length guard loads). */
  let vocab: LlamaModel;
  let plainVocab: LlamaModel;
  const ajv = new Ajv({ strict: false });
  const validators: Record<string, ReturnType<Ajv["compile"]>> = {
    get_weather: ajv.compile(WEATHER),
    search: ajv.compile(SEARCH),
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "corral-tools-"));
    const template = await readFile(join(repoRootDir, "test/fixtures/chat-templates/qwen2.5-instruct.jinja"), "utf8");
    for (const name of [STORIES, TINY_RANDOM]) {
      await copyGgufWithChatTemplate(join(sharedModelsDir(), `${name}.gguf`), join(dir, `${name}-qwen.gguf`), template);
    }
    engine = await Engine.create({ gpu: false, threads: 1, logger });
    const load = (modelId: string, path: string) => engine.load({ modelId, path, contextSize: 2048, sequences: 1 });
    qwenStories = await load("stories-qwen", join(dir, `${STORIES}-qwen.gguf`));
    qwenRandom = await load("random-qwen", join(dir, `${TINY_RANDOM}-qwen.gguf`));
    plain = await load(STORIES, join(sharedModelsDir(), `${STORIES}.gguf`));
    lease = await acquireLlama(false, () => {});
    vocab = await lease.llama.loadModel({ modelPath: join(dir, `${STORIES}-qwen.gguf`), vocabOnly: true });
    plainVocab = await lease.llama.loadModel({
      modelPath: join(sharedModelsDir(), `${STORIES}.gguf`),
      vocabOnly: true,
    });
  });
  after(async () => {
    await vocab?.dispose();
    await plainVocab?.dispose();
    lease?.release();
    await engine?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Checks calls validate against their function's parameters; returns their names. */
  const assertValidCalls = (calls: { id: string; name: string; arguments: string }[] | undefined): string[] => {
    assert.ok(calls && calls.length > 0, "the reply is a call");
    for (const call of calls) {
      assert.match(call.id, /^call_[A-Za-z0-9_-]+$/);
      const validate = validators[call.name];
      assert.ok(validate, `a known function: ${call.name}`);
      const args: unknown = JSON.parse(call.arguments);
      assert.ok(validate(args), `${call.name}(${call.arguments}): ${JSON.stringify(validate.errors)}`);
    }
    return calls.map((call) => call.name);
  };

  test("Qwen 2.5's template resolves to node-llama-cpp's Jinja template with its function-call syntax; plain stories260K has none", () => {
    assert.equal(qwenStories.chatWrapperName, "JinjaTemplate");
    assert.equal(qwenStories.nativeTools, true);
    assert.equal(qwenRandom.nativeTools, true);
    assert.equal(plain.nativeTools, false);
  });

  test("a job's tools reach the model as native functions: the prompt is the template's own <tools> block, and the worker counts that prompt", async () => {
    const planner = new ChatPlanner(vocab, chatWrapperFor(vocab));
    const plan = planner.plan(chat());
    assert.equal(plan.tools?.rendering, "native");
    assert.deepEqual(Object.keys(plan.functions?.functions ?? {}), ["get_weather", "search"]);
    assert.equal(plan.responseFormat, undefined, "no grammar: node-llama-cpp constrains the calls itself");
    const prompt = promptText(plan);
    assert.ok(prompt.includes("# Tools\n\nYou may call one or more functions"), prompt);
    assert.ok(prompt.includes("<tools>\n{") && prompt.includes('"name": "get_weather"'), prompt);
    assert.ok(prompt.includes('"enum": ["Paris", "Rome", "Oslo"]'), "the parameters are documented");
    assert.ok(!prompt.includes("You can call these functions"), "not the template-agnostic system message");
    assert.ok(prompt.endsWith("<|im_start|>assistant\n"), JSON.stringify(prompt.slice(-40)));

    // The worker runs (and counts) the same plan: its prompt_tokens are the native prompt's.
    const { usage } = await qwenStories.run(chat({ max_tokens: 4 }));
    assert.equal(usage.prompt_tokens, plan.promptTokens);
    const agnostic = new ChatPlanner(plainVocab, chatWrapperFor(plainVocab)).plan(chat());
    assert.equal(agnostic.tools?.rendering, "text");
    assert.ok(promptText(agnostic).includes("You can call these functions"));
  });

  test("tool_choice required: the model calls in the template's syntax at once, and each call's arguments validate", async () => {
    for (const [model, seed] of [
      [qwenStories, 1],
      [qwenStories, 2],
      [qwenRandom, 3],
      [qwenRandom, 4],
    ] as const) {
      const result = await model.run(chat({ tools: tools({ required: true }), seed }));
      assert.ok(result.tool_calls, JSON.stringify(result));
      assertValidCalls(result.tool_calls);
      assert.equal(result.text, "", "no text before the forced call");
    }
  });

  test("a streaming job's forced calls stream as the template-agnostic JSON, which adds up to its calls", async () => {
    for (const [model, seed] of [
      [qwenStories, 1],
      [qwenRandom, 2],
      [qwenStories, 3],
    ] as const) {
      const chunks: string[] = [];
      const job = chat({ tools: tools({ required: true, max_calls: 2 }), seed, stream: true, max_tokens: 400 });
      const result = await model.run(job, { onText: (text) => chunks.push(text) });
      assertValidCalls(result.tool_calls);
      // (A reply cut by max_tokens streams its last call unfinished, as a template-agnostic one does.)
      assert.equal(result.finish_reason, "stop");
      assert.ok(chunks.length > 1, "streamed in pieces as generated");
      const streamed = JSON.parse(chunks.join("")) as { tool_calls: { name: string; arguments: unknown }[] };
      assert.deepEqual(
        streamed.tool_calls,
        result.tool_calls!.map((call) => ({ name: call.name, arguments: JSON.parse(call.arguments) as unknown })),
      );
    }
  });

  test("a named choice calls only that function; max_calls 1 makes exactly one call", async () => {
    for (const seed of [1, 2, 3]) {
      const named = await qwenStories.run(chat({ tools: tools({ required: true, only: "search" }), seed }));
      assert.ok(assertValidCalls(named.tool_calls).every((name) => name === "search"));
      const one = await qwenRandom.run(chat({ tools: tools({ required: true, max_calls: 1 }), seed }));
      assert.equal(assertValidCalls(one.tool_calls).length, 1);
    }
  });

  test("Qwen's template calls in parallel: a forced reply may hold several calls", async () => {
    let most = 0;
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const result = await qwenStories.run(chat({ tools: tools({ required: true }), seed, temperature: 1 }));
      most = Math.max(most, assertValidCalls(result.tool_calls).length);
    }
    assert.ok(most > 1, `some reply made several calls (most: ${most})`);
  });

  test("assistant tool_calls and tool results render in the template's form: <tool_call> in the assistant turn, <tool_response> in a user turn", async () => {
    const planner = new ChatPlanner(vocab, chatWrapperFor(vocab));
    const plan = planner.plan(chat({ messages: ANSWERED }));
    const prompt = promptText(plan);
    const expected =
      "<|im_start|>assistant\n" +
      '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "metric": true}}\n</tool_call>\n' +
      '<tool_call>\n{"name": "search", "arguments": {"query": "Paris", "exact": false}}\n</tool_call><|im_end|>\n' +
      "<|im_start|>user\n" +
      '<tool_response>\n{"sky": "clear"}\n</tool_response>\n' +
      '<tool_response>\n"no results"\n</tool_response><|im_end|>\n' +
      "<|im_start|>assistant\n";
    assert.ok(prompt.endsWith(expected), JSON.stringify(prompt.slice(-400)));

    // The model goes on after the results (here forced to call again), fed that prompt.
    const forced = chat({ messages: ANSWERED, tools: tools({ required: true }), seed: 5 });
    const result = await qwenStories.run(forced);
    assertValidCalls(result.tool_calls);
    assert.equal(result.usage.prompt_tokens, planner.plan(forced).promptTokens);
  });

  test("auto: the model is free; a reply without calls is content (finish as usual)", async () => {
    const result = await qwenStories.run(chat({ max_tokens: 12, seed: 7 }));
    assert.equal(result.tool_calls, undefined);
    assert.ok(result.text.length > 0);
    assert.equal(result.finish_reason, "length");
  });

  test("tools whose schema needs Corral's own grammar rules (pattern, numeric bounds) take the template-agnostic path", async () => {
    const bounded: JobTools = {
      functions: [
        {
          name: "pick",
          parameters: {
            type: "object",
            properties: { n: { type: "integer", minimum: 1, maximum: 9 } },
            required: ["n"],
            additionalProperties: false,
          },
        },
      ],
      required: true,
      max_calls: 1,
    };
    const plan = new ChatPlanner(vocab, chatWrapperFor(vocab)).plan(chat({ tools: bounded }));
    assert.equal(plan.tools?.rendering, "text");
    assert.equal(plan.responseFormat?.type, "json_schema", "the call grammar forces the call");
    const result = await qwenStories.run(chat({ tools: bounded, seed: 3 }));
    const call = result.tool_calls?.[0];
    assert.equal(call?.name, "pick");
    const { n } = JSON.parse(call.arguments) as { n: number };
    assert.ok(Number.isInteger(n) && n >= 1 && n <= 9, call.arguments);
  });
});
