import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ChatOpenAI } from "@langchain/openai";
import { HumanMessage, SystemMessage } from "@langchain/core/messages";
import { METRIC } from "@corral/shared";
import { API_KEY, STORIES, startStack, type OpenAIStack } from "./harness.js";

/**
 * Prompt-prefix reuse seen from the API: chats that share a long system prompt, sent
 * through the official client and through LangChain, leave the worker evaluating only
 * what differs (its `corral_prompt_tokens_reused_total` grows by about the shared part),
 * and a reused prefix changes no answer (the same request at temperature 0 gives the same
 * text on a fresh stack with reuse off).
 */
const SYSTEM =
  "You tell short stories for small children. Every story has a kind animal, a garden, a lost ball, " +
  "a friend who helps, and a happy ending. Use simple words and short sentences. " +
  "Never use scary words. Always end with a smile.";

async function reusedTokens(stack: OpenAIStack): Promise<number> {
  const text = await (await fetch(stack.worker!.metricsUrl)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${METRIC.promptTokensReused}{`) && l.includes(STORIES));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

describe("prompt-prefix reuse through the API", () => {
  let stack: OpenAIStack;
  let plain: OpenAIStack;

  before(async () => {
    stack = await startStack();
    plain = await startStack({ workerEnv: { CORRAL_PREFIX_REUSE: "false" } });
  });
  after(async () => {
    await stack?.close();
    await plain?.close();
  });

  const chat = (s: OpenAIStack, user: string) =>
    s.client().chat.completions.create({
      model: STORIES,
      messages: [
        { role: "system", content: SYSTEM },
        { role: "user", content: user },
      ],
      temperature: 0,
      max_tokens: 12,
    });

  test("a second chat with the same system prompt reuses it, and answers as a worker without reuse does", async () => {
    const first = await chat(stack, "Once upon a time");
    const before = await reusedTokens(stack);
    const second = await chat(stack, "One day");
    const reused = (await reusedTokens(stack)) - before;
    // The system prompt alone is well over 40 of stories260K's tokens; the user turns differ.
    assert.ok(reused >= 40, `reused ${reused} prompt tokens`);
    assert.ok(reused < second.usage!.prompt_tokens, "the differing part was evaluated");

    const unreused = await chat(plain, "One day");
    assert.equal(second.choices[0]!.message.content, unreused.choices[0]!.message.content);
    assert.equal(second.usage!.prompt_tokens, unreused.usage!.prompt_tokens, "usage counts the whole prompt");
    assert.equal(await reusedTokens(plain), 0);
    assert.ok(first.choices[0]!.message.content);
  });

  test("LangChain's requests with the same system prompt reuse it too", async () => {
    const model = new ChatOpenAI({
      model: STORIES,
      apiKey: API_KEY,
      configuration: { baseURL: stack.baseURL },
      temperature: 0,
      maxTokens: 12,
      maxRetries: 0,
    });
    const before = await reusedTokens(stack);
    await model.invoke([new SystemMessage(SYSTEM), new HumanMessage("The sun was shining")]);
    assert.ok((await reusedTokens(stack)) - before >= 40);
  });
});
