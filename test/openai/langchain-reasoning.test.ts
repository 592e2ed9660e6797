import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChatOpenAI } from "@langchain/openai";
import { HumanMessage, type AIMessageChunk } from "@langchain/core/messages";
import { copyGgufWithChatTemplate } from "../support/gguf-writer.js";
import { repoRootDir, sharedModelsDir } from "../support/models.js";
import { API_KEY, STORIES, startStack, type OpenAIStack } from "./harness.js";

/**
 * A reasoning model through LangChain JS (@langchain/openai 1.5), which reads DeepSeek's
 * `reasoning_content` into `additional_kwargs.reasoning_content` and the reasoning tokens
 * into `usage_metadata.output_token_details.reasoning`: the same thoughts and answer as the
 * official client gets, whole and streamed. stories260K under DeepSeek R1's real template.
 */
const STORIES_R1 = "stories260K-r1";
const BUDGET = 12;

describe("a reasoning model through LangChain JS", () => {
  let stack: OpenAIStack;
  let dir: string;
  const chatModel = () =>
    new ChatOpenAI({
      model: STORIES_R1,
      apiKey: API_KEY,
      configuration: { baseURL: stack.baseURL },
      temperature: 0,
      maxTokens: 40,
      maxRetries: 0,
      modelKwargs: { max_reasoning_tokens: BUDGET },
    });
  const question = [new HumanMessage("Once upon a time")];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "corral-langchain-r1-"));
    const template = await readFile(join(repoRootDir, "test/fixtures/chat-templates/deepseek-r1.jinja"), "utf8");
    const path = join(dir, `${STORIES_R1}.gguf`);
    await copyGgufWithChatTemplate(join(sharedModelsDir(), `${STORIES}.gguf`), path, template);
    stack = await startStack({ models: [{ id: STORIES_R1, path }] });
  });

  after(async () => {
    await stack?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("invoke: the thoughts in additional_kwargs.reasoning_content and the answer in content, as the openai client gets them", async () => {
    const reference = await stack.client().chat.completions.create({
      model: STORIES_R1,
      messages: [{ role: "user", content: "Once upon a time" }],
      temperature: 0,
      max_tokens: 40,
      // @ts-expect-error Corral's extension field, not in OpenAI's types
      max_reasoning_tokens: BUDGET,
    });
    const expected = reference.choices[0]!.message as { content: string | null; reasoning_content?: string };
    assert.ok(expected.reasoning_content, "the model thought");

    const reply = await chatModel().invoke(question);
    assert.equal(reply.additional_kwargs.reasoning_content, expected.reasoning_content);
    assert.equal(reply.content, expected.content ?? "");
    assert.equal(reply.usage_metadata?.output_token_details?.reasoning, BUDGET);
  });

  test("stream: the chunks' reasoning_content add up to the same thoughts, before the answer", async () => {
    const whole = await chatModel().invoke(question);
    let reasoning = "";
    let content = "";
    let answerStarted = false;
    let thoughtAfterAnswer = false;
    for await (const chunk of await chatModel().stream(question)) {
      const thought = (chunk as AIMessageChunk).additional_kwargs.reasoning_content;
      if (typeof thought === "string" && thought !== "") {
        reasoning += thought;
        if (answerStarted) thoughtAfterAnswer = true;
      }
      if (typeof chunk.content === "string" && chunk.content !== "") {
        content += chunk.content;
        answerStarted = true;
      }
    }
    assert.equal(reasoning, whole.additional_kwargs.reasoning_content);
    assert.equal(content, whole.content);
    assert.equal(thoughtAfterAnswer, false, "no thought came after the answer started");
  });
});
