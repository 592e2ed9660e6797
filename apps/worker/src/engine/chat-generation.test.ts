import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { acquireLlama, chatWrapperFor, toChatHistory, type LlamaLease } from "@corral/llama";
import type { LlamaContext, LlamaModel } from "node-llama-cpp";
import { copyGgufWithChatTemplate } from "../../../../test/support/gguf-writer.js";
import { STORIES, repoRootDir, sharedModelsDir } from "../../../../test/support/models.js";
import { generateChat } from "./chat-generation.js";

/**
 * A thought the model writes itself: stories260K under R1's template, with `<think>` forced
 * by a grammar (R1's template as node-llama-cpp resolves it leaves the thought to the model).
 */
describe("generateChat: a thought segment the model writes (stories260K, <think> forced by a grammar)", () => {
  let lease: LlamaLease;
  let model: LlamaModel;
  let context: LlamaContext;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "corral-chat-generation-"));
    const template = await readFile(join(repoRootDir, "test/fixtures/chat-templates/deepseek-r1.jinja"), "utf8");
    const path = join(dir, "stories-r1.gguf");
    await copyGgufWithChatTemplate(join(sharedModelsDir(), `${STORIES}.gguf`), path, template);
    lease = await acquireLlama(false, () => {});
    model = await lease.llama.loadModel({ modelPath: path, gpuLayers: 0 });
    context = await model.createContext({ contextSize: 256, threads: 1 });
  });
  after(async () => {
    await context?.dispose();
    await model?.dispose();
    lease?.release();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("the thought is split from the answer, streamed apart, and its tokens counted", async () => {
    const grammar = await lease.llama.createGrammar({
      // As R1 writes it: newlines inside the thought's markers, and a blank line before the answer.
      grammar: 'root ::= "<think>\\n" [a-z ]{4,24} "\\n</think>\\n\\n" [a-z ]{2,24}',
    });
    const sequence = context.getSequence();
    const chatWrapper = chatWrapperFor(model);
    assert.equal(chatWrapper.wrapperName, "DeepSeek");
    const streamed: string[] = [];
    const answer: string[] = [];
    const generation = await generateChat(
      sequence,
      chatWrapper,
      toChatHistory([{ role: "user", content: "Once upon a time" }]),
      { grammar, maxTokens: 64, temperature: 0, onTextChunk: (text) => answer.push(text) },
      { budget: 1000, onThought: (text) => streamed.push(text), onDropped: () => {} },
    );
    const thoughts = generation.thoughts ?? "";
    assert.match(thoughts, /^[a-z ]{1,24}$/, `thought: ${JSON.stringify(thoughts)}`);
    assert.equal(thoughts, thoughts.trim(), "the whitespace around the thought is dropped");
    assert.match(generation.response, /^[a-z ]{1,24}$/, `answer: ${JSON.stringify(generation.response)}`);
    assert.equal(generation.response, generation.response.trimStart(), "the answer starts at its first letter");
    assert.equal(streamed.join(""), generation.thoughts);
    assert.equal(answer.join(""), generation.response);
    assert.ok(generation.thoughtTokens > 0 && generation.thoughtTokens <= 26);
    assert.equal(generation.stopReason, "eogToken", "the grammar ended the answer");
    sequence.dispose();
  });

  test("without thought options (a model that does not reason) nothing is collected", async () => {
    const sequence = context.getSequence();
    const generation = await generateChat(
      sequence,
      chatWrapperFor(model),
      toChatHistory([{ role: "user", content: "Once upon a time" }]),
      { grammar: undefined, maxTokens: 8, temperature: 0 },
      null,
    );
    assert.equal(generation.thoughts, null);
    assert.equal(generation.thoughtTokens, 0);
    sequence.dispose();
  });
});
