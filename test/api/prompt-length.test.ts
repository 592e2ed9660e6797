import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import type { LlamaModel } from "node-llama-cpp";
import { pino } from "pino";
import { PromptCounter, acquireLlama } from "@corral/llama";
import { ModelTokenizer, PromptLengthGuard } from "@corral/scheduler";
import type { CatalogModel } from "@corral/shared";
import { API_KEY, STORIES, TINY_RANDOM, startStack, type OpenAIStack } from "../openai/harness.js";
import { sharedModelsDir } from "../support/models.js";

/** The harness's models have a context of 1024 tokens per sequence. */
const CONTEXT = 1024;

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/**
 * Issue 16: a prompt that cannot fit its model's context is refused at submit (400,
 * `context_length_exceeded`) instead of being queued, stored in Redis, and failed by a
 * worker. Counted with the model's vocabulary by the worker's own count (@corral/llama's
 * PromptCounter, which the scheduler's ModelTokenizer uses): the worker must report the
 * same `usage.prompt_tokens`.
 */
describe("prompts that cannot fit the model's context", () => {
  let stack: OpenAIStack;
  const vocabularies: LlamaModel[] = [];
  let stories: PromptCounter;
  let tiny: PromptCounter;

  before(async () => {
    stack = await startStack();
    const { llama, release } = await acquireLlama(false, () => {});
    release();
    const counter = async (name: string): Promise<PromptCounter> => {
      const model = await llama.loadModel({
        modelPath: join(sharedModelsDir(), `${name}.gguf`),
        vocabOnly: true,
        gpuLayers: 0,
      });
      vocabularies.push(model);
      return new PromptCounter(model);
    };
    stories = await counter(STORIES);
    tiny = await counter(TINY_RANDOM);
  });
  after(async () => {
    for (const model of vocabularies) await model.dispose();
    await stack?.close();
  });

  const post = async (path: string, body: unknown): Promise<{ status: number; body: ErrorBody }> => {
    const response = await fetch(`${stack.baseURL}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as ErrorBody };
  };
  const jobsOfTenant = () => stack.redis.zcard(stack.keys.tenantJobs("lab"));
  const expectTooLong = (answer: { status: number; body: ErrorBody }, param: string) => {
    assert.equal(answer.status, 400, JSON.stringify(answer.body));
    assert.equal(answer.body.error.code, "context_length_exceeded");
    assert.equal(answer.body.error.type, "invalid_request_error");
    assert.equal(answer.body.error.param, param);
    assert.match(answer.body.error.message, /maximum context length is 1024 tokens/);
  };

  test("POST /v1/jobs refuses a prompt longer than the context, and queues nothing", async () => {
    const before = await jobsOfTenant();
    expectTooLong(await post("/jobs", { model: STORIES, prompt: "x ".repeat(1100), max_tokens: 8 }), "prompt");
    // Without max_tokens too: the prompt alone leaves no room.
    expectTooLong(await post("/jobs", { model: STORIES, prompt: "x ".repeat(1100) }), "prompt");
    // A megabyte is refused from its length alone.
    expectTooLong(await post("/jobs", { model: STORIES, prompt: "once upon a time ".repeat(50_000) }), "prompt");
    assert.equal(await jobsOfTenant(), before, "no job was created");
  });

  test("POST /v1/chat/completions and /v1/completions refuse them with OpenAI's error", async () => {
    const messages = [{ role: "user", content: "tell me a story ".repeat(400) }];
    expectTooLong(await post("/chat/completions", { model: STORIES, messages, max_tokens: 8 }), "messages");
    expectTooLong(await post("/completions", { model: STORIES, prompt: "x ".repeat(1100), max_tokens: 8 }), "prompt");
    expectTooLong(await post("/completions", { model: STORIES, prompt: ["hi", "x ".repeat(1100)] }), "prompt");
  });

  test("prompt plus max_tokens must fit: the last token that fits is accepted, one more is refused", async () => {
    const prompt = "Once upon a time there was a little girl";
    const promptTokens = stories.countPrompt(prompt);
    const room = CONTEXT - 1 - promptTokens;
    expectTooLong(await post("/jobs", { model: STORIES, prompt, max_tokens: room + 1 }), "prompt");
    const accepted = await fetch(`${stack.baseURL}/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ model: STORIES, prompt, max_tokens: room, temperature: 0, stop: ["."] }),
    });
    assert.equal(accepted.status, 200, await accepted.clone().text());
    const data = (await accepted.json()) as { usage: { prompt_tokens: number } };
    assert.equal(data.usage.prompt_tokens, promptTokens, "the scheduler counts the prompt as the worker does");
  });

  test("a chat is counted with its chat template, as the worker counts it", async () => {
    for (const [model, tokenizer] of [
      [STORIES, stories],
      [TINY_RANDOM, tiny],
    ] as const) {
      const messages = [
        { role: "system" as const, content: "You are a storyteller." },
        { role: "user" as const, content: "Tell me about a cat." },
      ];
      const tokens = tokenizer.countChat(messages);
      const room = CONTEXT - 1 - tokens;
      expectTooLong(await post("/chat/completions", { model, messages, max_tokens: room + 1 }), "messages");
      const accepted = await fetch(`${stack.baseURL}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` },
        body: JSON.stringify({ model, messages, max_tokens: room, temperature: 0, stop: ["."] }),
      });
      assert.equal(accepted.status, 200, await accepted.clone().text());
      const data = (await accepted.json()) as { usage: { prompt_tokens: number } };
      assert.equal(data.usage.prompt_tokens, tokens, `${model}: the worker counted the same chat tokens`);
    }
  });
});

describe("PromptLengthGuard", () => {
  const model = (id: string, file: string): CatalogModel => ({ id, file, context_size: 64 }) as unknown as CatalogModel;

  test("loads one vocabulary per model, on its first job, and gives it back when the catalog drops the model", async () => {
    let loads = 0;
    const guard = new PromptLengthGuard({
      modelsDir: sharedModelsDir(),
      logger: pino({ level: "silent" }),
      loadTokenizer: async (path) => {
        loads++;
        const { llama, release } = await acquireLlama(false, () => {});
        release();
        return ModelTokenizer.load(llama, path);
      },
    });
    const a = model("a", `${STORIES}.gguf`);
    const job = { kind: "completion" as const, prompt: "Once upon a time", max_tokens: 8 };
    assert.deepEqual(guard.loaded, []);
    await guard.check(a, job, true);
    await guard.check(a, job, true);
    assert.equal(loads, 1);
    await assert.rejects(guard.check(a, { ...job, prompt: "x ".repeat(100) }, true), {
      code: "context_length_exceeded",
    });
    await guard.prune([]);
    assert.deepEqual(guard.loaded, []);
    await guard.check(a, job, true);
    assert.equal(loads, 2, "loaded again after the catalog dropped it");
    await guard.close();
  });

  test("a model whose vocabulary cannot be loaded is left to the worker", async () => {
    const guard = new PromptLengthGuard({ modelsDir: "/nonexistent", logger: pino({ level: "silent" }) });
    await guard.check(
      model("gone", "gone.gguf"),
      { kind: "completion", prompt: "x ".repeat(1000), max_tokens: 8 },
      true,
    );
    await guard.close();
  });
});
