import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JobPayload } from "@corral/shared";
import { Ajv } from "ajv";
import { InsufficientMemoryError } from "node-llama-cpp";
import { pino } from "pino";
import { STORIES, TINY_RANDOM, sharedModelsDir } from "../../../../test/support/models.js";
import {
  Engine,
  InvalidJobError,
  ModelDisposedError,
  ModelFileError,
  OutOfMemoryError,
  PromptTooLongError,
  UnsupportedSchemaError,
  isOutOfMemory,
  isUnrecoverable,
  type LoadedModel,
} from "./index.js";

const logger = pino({ level: "silent" });
const storiesPath = join(sharedModelsDir(), `${STORIES}.gguf`);
const GREEDY_START = ", there was a little girl named Lily";

const job = (overrides: Partial<JobPayload> = {}): JobPayload => ({
  id: "job-1",
  tenant: "t1",
  model: STORIES,
  file: `${STORIES}.gguf`,
  source: "native",
  kind: "completion",
  prompt: "Once upon a time",
  max_tokens: 32,
  temperature: 0,
  stream: true,
  requirement_bytes: 0,
  created_at: Date.now(),
  ...overrides,
});

describe("Engine on stories260K (real llama.cpp, CPU)", () => {
  let engine: Engine;
  let model: LoadedModel;

  before(async () => {
    engine = await Engine.create({ gpu: false, threads: 1, logger });
    model = await engine.load({ modelId: STORIES, path: storiesPath, contextSize: 256, sequences: 2 });
  });
  after(async () => {
    await engine.close();
  });

  test("reports the CPU backend and the loaded model's shape", () => {
    assert.equal(engine.backend, "cpu");
    assert.equal(model.modelId, STORIES);
    assert.equal(model.sequences, 2);
    assert.equal(model.contextSize, 256);
    assert.equal(model.gpuLayers, 0);
    assert.equal(model.chatWrapperName, "General", "stories260K has no chat template");
    assert.ok(model.loadMs > 0);
    assert.ok(model.idle);
    assert.equal(model.busySequences, 0);
    assert.deepEqual(engine.loadedModels, [model]);
  });

  test("greedy completion is deterministic, streams its text, and counts tokens", async () => {
    const chunks: string[] = [];
    const first = await model.run(job(), { onText: (text) => chunks.push(text) });
    assert.ok(first.text.startsWith(GREEDY_START), first.text);
    assert.equal(first.finish_reason, "length");
    assert.equal(first.usage.prompt_tokens, 7, "BOS + 6 tokens for 'Once upon a time'");
    assert.equal(first.usage.completion_tokens, 32);
    assert.equal(chunks.join(""), first.text);
    assert.ok(first.ttft_ms !== null && first.ttft_ms > 0 && first.ttft_ms <= first.generation_ms);

    const second = await model.run(job());
    assert.equal(second.text, first.text, "state of the previous job must not leak into the next");
    assert.deepEqual(second.usage, first.usage);
    assert.ok(model.idle);
  });

  test("a completion keeps the space between the prompt's last word and the first generated word", async () => {
    const chunks: string[] = [];
    const result = await model.run(job({ prompt: "One day, Tom went to the park", max_tokens: 6, temperature: 0 }), {
      onText: (text) => chunks.push(text),
    });
    assert.match(result.text, /^ with/);
    assert.equal(chunks.join(""), result.text);
  });

  test("max_tokens ends generation with finish 'length'", async () => {
    const result = await model.run(job({ max_tokens: 5 }));
    assert.equal(result.finish_reason, "length");
    assert.equal(result.usage.completion_tokens, 5);
    assert.ok(GREEDY_START.startsWith(result.text), result.text);
  });

  test("a stop string ends generation with finish 'stop' and is not part of the text", async () => {
    const chunks: string[] = [];
    const result = await model.run(job({ stop: ["Lily"], max_tokens: 64 }), { onText: (t) => chunks.push(t) });
    assert.equal(result.finish_reason, "stop");
    assert.ok(!result.text.includes("Lily"), result.text);
    assert.ok(result.text.trimEnd().endsWith("a little girl named"), result.text);
    assert.equal(chunks.join(""), result.text, "the stop string is not streamed either");
    assert.ok(result.usage.completion_tokens > 0 && result.usage.completion_tokens < 64);
  });

  test("chat messages run through the fallback template and produce text", async () => {
    const result = await model.run(
      job({
        kind: "chat",
        prompt: undefined,
        max_tokens: 24,
        messages: [
          { role: "system", content: "You tell short stories." },
          { role: "user", content: "Tell me about a cat." },
          { role: "assistant", content: "The cat was happy." },
          { role: "user", content: "What did the cat do next?" },
        ],
      }),
    );
    assert.ok(result.text.trim().length > 0);
    assert.ok(["stop", "length"].includes(result.finish_reason));
    assert.ok(result.usage.prompt_tokens > 20, "the template and the whole history count as prompt");
    assert.ok(result.usage.completion_tokens > 0 && result.usage.completion_tokens <= 24);
  });

  test("the same seed at temperature 0.8 gives the same text", async () => {
    const sampled = job({ temperature: 0.8, top_p: 0.95, top_k: 40, seed: 1234, max_tokens: 24 });
    const a = await model.run(sampled);
    const b = await model.run(sampled);
    assert.ok(a.text.length > 0);
    assert.equal(b.text, a.text);
  });

  test("aborting mid-generation returns the partial text with finish 'cancelled'", async () => {
    const controller = new AbortController();
    let chunks = 0;
    const result = await model.run(job({ max_tokens: 200 }), {
      signal: controller.signal,
      onText: () => {
        if (++chunks === 3) controller.abort();
      },
    });
    assert.equal(result.finish_reason, "cancelled");
    assert.ok(result.text.length > 0);
    assert.ok(GREEDY_START.startsWith(result.text), result.text);
    assert.ok(result.usage.completion_tokens >= 3 && result.usage.completion_tokens < 200);
    assert.ok(model.idle);
  });

  test("an onText callback that throws does not break generation", async () => {
    const result = await model.run(job({ max_tokens: 8 }), {
      onText: () => {
        throw new Error("redis is down");
      },
    });
    assert.equal(result.finish_reason, "length");
    assert.ok(GREEDY_START.startsWith(result.text) || result.text.startsWith(GREEDY_START), result.text);
  });

  test("an already aborted signal cancels before generating", async () => {
    const result = await model.run(job(), { signal: AbortSignal.abort() });
    assert.equal(result.finish_reason, "cancelled");
    assert.equal(result.text, "");
    assert.equal(result.usage.completion_tokens, 0);
  });

  test("a json_schema response format yields JSON that matches the schema", async () => {
    const schema = {
      type: "object",
      properties: { done: { type: "boolean" }, name: { type: "string", maxLength: 12 } },
      required: ["done", "name"],
      additionalProperties: false,
    };
    const result = await model.run(
      job({
        max_tokens: 64,
        response_format: { type: "json_schema", json_schema: { name: "tiny", schema } },
      }),
    );
    assert.equal(result.finish_reason, "stop", result.text);
    const validate = new Ajv().compile(schema);
    const parsed: unknown = JSON.parse(result.text);
    assert.ok(validate(parsed), JSON.stringify(validate.errors));
  });

  test("a json_schema the grammar cannot enforce is rejected as unrecoverable", async () => {
    const schema = { type: "object", properties: { id: { type: "string", pattern: "^(?!admin)[a-z]+$" } } };
    await assert.rejects(
      model.run(job({ response_format: { type: "json_schema", json_schema: { name: "p", schema } } })),
      (error: unknown) => {
        assert.ok(error instanceof UnsupportedSchemaError);
        assert.equal(error.pointer, "/properties/id/pattern");
        assert.ok(isUnrecoverable(error));
        return true;
      },
    );
    assert.ok(model.idle);
  });

  test("embeddings are 64-dimensional vectors, one per input", async () => {
    const vectors = await model.embed(["A cat sat on the mat.", "Lily played in the park."]);
    assert.equal(vectors.length, 2);
    for (const vector of vectors) {
      assert.equal(vector.length, 64);
      assert.ok(vector.every(Number.isFinite));
    }
    assert.notDeepEqual(vectors[0], vectors[1]);

    const result = await model.run(job({ kind: "embedding", prompt: undefined, input: ["A cat sat on the mat."] }));
    assert.deepEqual(result.embeddings, [vectors[0]]);
    assert.ok(result.usage.prompt_tokens > 0);
    assert.equal(result.usage.completion_tokens, 0);
  });

  test("a job without the input its kind needs is an unrecoverable InvalidJobError", async () => {
    await assert.rejects(model.run(job({ kind: "chat", prompt: "hi" })), InvalidJobError);
    await assert.rejects(model.run(job({ prompt: undefined })), (error: unknown) => isUnrecoverable(error));
  });

  test("two sequences run two jobs at once", async () => {
    const runs = [model.run(job({ id: "a" })), model.run(job({ id: "b" }))];
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(model.busySequences, 2);
    assert.equal(model.waitingJobs, 0);
    const [a, b] = await Promise.all(runs);
    assert.ok(a!.text.startsWith(GREEDY_START), a!.text);
    assert.ok(b!.text.startsWith(GREEDY_START), b!.text);
    assert.equal(model.busySequences, 0);
  });

  test("a prompt that leaves no room in the context is rejected before generating", async () => {
    const small = await engine.load({ modelId: "small", path: storiesPath, contextSize: 32, sequences: 1 });
    try {
      const contextSize = small.contextSize; // llama.cpp rounds 32 up to 256
      assert.equal(contextSize, 256);
      await assert.rejects(small.run(job({ prompt: "Once upon a time ".repeat(100), max_tokens: 16 })), (error) => {
        assert.ok(error instanceof PromptTooLongError);
        assert.ok(error.promptTokens > contextSize, String(error.promptTokens));
        assert.equal(error.contextSize, contextSize);
        assert.equal(error.maxTokens, 16);
        assert.ok(isUnrecoverable(error));
        return true;
      });

      // A prompt that fits with max_tokens that don't: generation is clamped to the context.
      const clamped = await small.run(job({ prompt: "Once upon a time ".repeat(50), max_tokens: 1000 }));
      assert.equal(clamped.finish_reason, "length");
      assert.equal(clamped.usage.prompt_tokens + clamped.usage.completion_tokens, contextSize - 1);

      // The same for a chat: LlamaChat must neither drop history nor shift the context.
      const chat = await small.run(
        job({
          kind: "chat",
          prompt: undefined,
          messages: [{ role: "user", content: "Once upon a time ".repeat(45) }],
          max_tokens: 1000,
        }),
      );
      assert.equal(chat.finish_reason, "length", chat.text);
      assert.equal(chat.usage.prompt_tokens + chat.usage.completion_tokens, contextSize - 1);
      await assert.rejects(
        small.run(
          job({
            kind: "chat",
            prompt: undefined,
            messages: [{ role: "user", content: "Once upon a time ".repeat(70) }],
          }),
        ),
        PromptTooLongError,
      );
    } finally {
      await small.dispose();
    }
  });

  test("with one sequence a second job waits for the first, then both succeed", async () => {
    const single = await engine.load({ modelId: "single", path: storiesPath, contextSize: 256, sequences: 1 });
    try {
      const first = single.run(job({ id: "first", max_tokens: 16 }));
      const second = single.run(job({ id: "second", max_tokens: 16 }));
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(single.busySequences, 1);
      assert.equal(single.waitingJobs, 1);
      assert.ok(!single.idle);
      const [a, b] = await Promise.all([first, second]);
      assert.equal(a.text, b.text);
      assert.ok(a.text.startsWith(", there was"), a.text);
      assert.ok(single.idle);
    } finally {
      await single.dispose();
    }
  });

  test("a disposed model refuses runs, and the engine forgets it; dispose is idempotent", async () => {
    const single = await engine.load({ modelId: "disposable", path: storiesPath, contextSize: 256, sequences: 1 });
    assert.equal(engine.loadedModels.length, 2);
    assert.ok((await single.run(job({ max_tokens: 4 }))).text.length > 0);
    await Promise.all([single.dispose(), single.dispose()]);
    assert.ok(single.disposed);
    await assert.rejects(single.run(job()), ModelDisposedError);
    await assert.rejects(single.embed(["x"]), ModelDisposedError);
    assert.deepEqual(engine.loadedModels, [model]);
  });

  test("the other tiny model (llama-2-tiny-random) loads and generates", async () => {
    const tiny = await engine.load({
      modelId: TINY_RANDOM,
      path: join(sharedModelsDir(), `${TINY_RANDOM}.gguf`),
      contextSize: 256,
      sequences: 1,
    });
    try {
      const result = await tiny.run(job({ max_tokens: 4 }));
      assert.ok(["stop", "length"].includes(result.finish_reason));
      assert.ok(result.usage.completion_tokens <= 4);
    } finally {
      await tiny.dispose();
    }
  });
});

describe("Engine load failures", () => {
  let engine: Engine;
  let dir: string;

  before(async () => {
    engine = await Engine.create({ gpu: false, logger });
    dir = await mkdtemp(join(tmpdir(), "corral-engine-"));
  });
  after(async () => {
    await engine.close();
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("a missing model file is a ModelFileError naming the file", async () => {
    const path = join(dir, "nope.gguf");
    await assert.rejects(engine.load({ modelId: "nope", path, contextSize: 256, sequences: 1 }), (error) => {
      assert.ok(error instanceof ModelFileError);
      assert.equal(error.path, path);
      assert.match(error.message, /nope\.gguf/);
      assert.match(error.message, /does not exist/);
      assert.ok(isUnrecoverable(error));
      return true;
    });
  });

  test("a file of random bytes is a ModelFileError", async () => {
    const path = join(dir, "random.gguf");
    await writeFile(path, Buffer.concat([Buffer.from("NOPE"), randomBytes(4096)]));
    await assert.rejects(engine.load({ modelId: "random", path, contextSize: 256, sequences: 1 }), (error) => {
      assert.ok(error instanceof ModelFileError);
      assert.match(error.message, /random\.gguf/);
      assert.match(error.reason, /not a GGUF file/);
      return true;
    });
  });

  test("a GGUF header followed by garbage is a ModelFileError, not a hang", async () => {
    const path = join(dir, "garbage.gguf");
    const header = Buffer.alloc(8);
    header.write("GGUF", 0, "latin1");
    header.writeUInt32LE(3, 4);
    await writeFile(path, Buffer.concat([header, randomBytes(4096)]));
    await assert.rejects(engine.load({ modelId: "garbage", path, contextSize: 256, sequences: 1 }), ModelFileError);
  });

  test("a truncated GGUF that llama.cpp rejects is a ModelFileError", async () => {
    const { readFile } = await import("node:fs/promises");
    const path = join(dir, "truncated.gguf");
    const original = await readFile(storiesPath);
    await writeFile(path, original.subarray(0, Math.floor(original.length / 2)));
    await assert.rejects(engine.load({ modelId: "truncated", path, contextSize: 256, sequences: 1 }), (error) => {
      assert.ok(error instanceof ModelFileError, String(error));
      assert.match(error.message, /truncated\.gguf/);
      assert.match(error.message, /not within the file bounds/, "llama.cpp's logged cause is in the message");
      return true;
    });
  });

  test("out-of-memory while loading becomes OutOfMemoryError, which is not unrecoverable", async () => {
    for (const thrown of [
      new InsufficientMemoryError("Not enough VRAM to fit the model with the specified settings"),
      new Error("ggml_backend_cuda_buffer_type_alloc_buffer: failed to allocate CUDA buffer of size 123"),
    ]) {
      const failing = await Engine.create({
        gpu: false,
        logger,
        loadModel: () => Promise.reject(thrown),
      });
      try {
        await assert.rejects(
          failing.load({ modelId: STORIES, path: storiesPath, contextSize: 256, sequences: 1 }),
          (error) => {
            assert.ok(error instanceof OutOfMemoryError, String(error));
            assert.equal(error.modelId, STORIES);
            assert.equal(error.phase, "load");
            assert.equal(error.cause, thrown);
            assert.ok(isOutOfMemory(error));
            assert.ok(!isUnrecoverable(error));
            return true;
          },
        );
        assert.deepEqual(failing.loadedModels, []);
      } finally {
        await failing.close();
      }
    }
  });

  test("an aborted load rejects with the abort reason", async () => {
    const reason = new Error("shutting down");
    await assert.rejects(
      engine.load({
        modelId: STORIES,
        path: storiesPath,
        contextSize: 256,
        sequences: 1,
        signal: AbortSignal.abort(reason),
      }),
      (error) => error === reason,
    );
    assert.deepEqual(engine.loadedModels, []);
  });

  test("load after close is refused", async () => {
    const closed = await Engine.create({ gpu: false, logger });
    await closed.close();
    await assert.rejects(closed.load({ modelId: STORIES, path: storiesPath, contextSize: 256, sequences: 1 }));
  });
});

describe("Engine chat templates", () => {
  // Neither tiny model has a template, so one is injected as a metadata override
  // (node-llama-cpp's addon prints "Override: tokenizer.chat_template = …" to stdout for it).
  test("a GGUF with a chat template gets the matching chat wrapper", async () => {
    const template = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}";
    const engine = await Engine.create({
      gpu: false,
      logger,
      loadModel: (llama, options) =>
        llama.loadModel({ ...options, metadataOverrides: { tokenizer: { chat_template: template } } }),
    });
    try {
      const model = await engine.load({ modelId: STORIES, path: storiesPath, contextSize: 256, sequences: 1 });
      assert.equal(model.chatWrapperName, "ChatML");
      const result = await model.run(
        job({ kind: "chat", prompt: undefined, max_tokens: 8, messages: [{ role: "user", content: "Hi" }] }),
      );
      assert.ok(["stop", "length"].includes(result.finish_reason));
      assert.ok(result.usage.prompt_tokens > 10, "the ChatML markup counts as prompt");
    } finally {
      await engine.close();
    }
  });
});
