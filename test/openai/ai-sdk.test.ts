import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createOpenAI, type OpenAIProvider } from "@ai-sdk/openai";
import {
  APICallError,
  Output,
  generateText,
  stepCountIs,
  streamText,
  tool,
  type LanguageModel,
  type ModelMessage,
} from "ai";
import { z } from "zod";
import { API_KEY, STORIES, startStack, type OpenAIStack } from "./harness.js";

/**
 * The Vercel AI SDK (ai 6, @ai-sdk/openai 3) against Corral: through chat completions
 * (`provider.chat`) and through the Responses API (`provider.responses`, the SDK's
 * default for `provider(model)`), on real llama.cpp.
 */

const weatherInput = z.object({
  city: z.string().min(1).max(20),
  unit: z.enum(["celsius", "fahrenheit"]),
});
const weather = tool({
  description: "The weather in a city",
  inputSchema: weatherInput,
});
const PROMPT = "What is the weather in Paris?";

describe("the Vercel AI SDK against a real scheduler and worker", () => {
  let stack: OpenAIStack;
  let provider: OpenAIProvider;
  const apis: [string, () => LanguageModel][] = [
    ["chat completions", () => provider.chat(STORIES)],
    ["responses", () => provider.responses(STORIES)],
  ];

  before(async () => {
    stack = await startStack();
    provider = createOpenAI({ baseURL: stack.baseURL, apiKey: API_KEY });
  });

  after(async () => {
    await stack?.close();
  });

  for (const [api, model] of apis) {
    test(`${api}: generateText with a required tool returns a call whose input parses with the tool's zod schema`, async () => {
      const result = await generateText({
        model: model(),
        prompt: PROMPT,
        tools: { weather },
        toolChoice: "required",
        temperature: 0,
        maxOutputTokens: 300,
        maxRetries: 0,
        providerOptions: { openai: { parallelToolCalls: false } },
      });
      assert.equal(result.finishReason, "tool-calls");
      assert.equal(result.toolCalls.length, 1);
      const call = result.toolCalls[0]!;
      assert.equal(call.toolName, "weather");
      assert.ok(weatherInput.safeParse(call.input).success, JSON.stringify(call.input));
      assert.ok(result.usage.inputTokens! > 0 && result.usage.outputTokens! > 0);
    });

    test(`${api}: a tool loop: the call is executed, its result sent back, and the model answers in text`, async () => {
      const executed: unknown[] = [];
      const result = await generateText({
        model: model(),
        prompt: PROMPT,
        tools: {
          weather: tool({
            ...weather,
            execute: async (input) => {
              executed.push(input);
              return { forecast: "sunny", degrees: 21 };
            },
          }),
        },
        // The first step must call; the second answers with the result in the prompt.
        prepareStep: ({ stepNumber }) => ({ toolChoice: stepNumber === 0 ? "required" : "none" }),
        stopWhen: stepCountIs(2),
        temperature: 0,
        maxOutputTokens: 300,
        maxRetries: 0,
        providerOptions: { openai: { parallelToolCalls: false } },
      });
      assert.equal(result.steps.length, 2);
      assert.equal(executed.length, 1);
      assert.ok(weatherInput.safeParse(executed[0]).success);
      assert.ok(result.text.length > 0, "the second step answers in text");
      // The second request carried the call and its result (a tool message, or function_call_output items).
      const second = JSON.stringify(result.steps[1]!.request.body);
      assert.match(second, api === "responses" ? /"function_call_output"/ : /"role":"tool"/);
      assert.match(second, /sunny/);
    });

    test(`${api}: a follow-up turn sends the earlier assistant text back (responses: with store false)`, async () => {
      const first = await generateText({
        model: model(),
        prompt: "Once upon a time",
        temperature: 0,
        maxOutputTokens: 8,
        maxRetries: 0,
      });
      const messages: ModelMessage[] = [
        { role: "user", content: "Once upon a time" },
        ...first.response.messages,
        { role: "user", content: "And then?" },
      ];
      const settings = { model: model(), messages, temperature: 0, maxOutputTokens: 8, maxRetries: 0 } as const;
      if (api === "responses") {
        // The provider assumes stored responses and refers to its earlier output by id, which a stateless server cannot resolve.
        await assert.rejects(generateText(settings), (error: unknown) => {
          assert.ok(APICallError.isInstance(error), String(error));
          assert.equal(error.statusCode, 400);
          assert.match(error.responseBody ?? "", /"param":"input\.1\.type"/);
          assert.match(error.responseBody ?? "", /item_reference/);
          return true;
        });
      }
      const second = await generateText({ ...settings, providerOptions: { openai: { store: false } } });
      assert.ok(second.text.length > 0);
      assert.ok(second.usage.inputTokens! > first.usage.inputTokens!, "the earlier turn is in the prompt");
    });

    test(`${api}: streamText relays text deltas that join to the final text`, async () => {
      const result = streamText({
        model: model(),
        prompt: "Once upon a time",
        temperature: 0,
        maxOutputTokens: 24,
        maxRetries: 0,
      });
      const deltas: string[] = [];
      for await (const delta of result.textStream) deltas.push(delta);
      assert.ok(deltas.length > 1, "several deltas");
      assert.equal(deltas.join(""), await result.text);
      assert.equal(await result.finishReason, "length");
      assert.equal((await result.usage).outputTokens, 24);
      const whole = await generateText({
        model: model(),
        prompt: "Once upon a time",
        temperature: 0,
        maxOutputTokens: 24,
        maxRetries: 0,
      });
      assert.equal(whole.text, await result.text);
    });

    test(`${api}: streamText with a required tool streams a tool-call part`, async () => {
      const result = streamText({
        model: model(),
        prompt: PROMPT,
        tools: { weather },
        toolChoice: "required",
        temperature: 0,
        maxOutputTokens: 300,
        maxRetries: 0,
        providerOptions: { openai: { parallelToolCalls: false } },
      });
      const types: string[] = [];
      for await (const part of result.fullStream) {
        types.push(part.type);
        if (part.type === "error") throw part.error;
      }
      assert.ok(types.includes("tool-call"), types.join(","));
      const calls = await result.toolCalls;
      assert.equal(calls.length, 1);
      assert.ok(weatherInput.safeParse(calls[0]!.input).success);
      assert.equal(await result.finishReason, "tool-calls");
    });

    test(`${api}: Output.object gives an object that parses with the zod schema`, async () => {
      const person = z.object({
        name: z.string().min(1).max(12),
        age: z.number().int().min(0).max(120),
      });
      const result = await generateText({
        model: model(),
        prompt: "Describe a person.",
        output: Output.object({ schema: person }),
        temperature: 0,
        maxOutputTokens: 200,
        maxRetries: 0,
      });
      assert.ok(person.safeParse(result.output).success, JSON.stringify(result.output));
    });

    test(`${api}: logprobs through providerOptions come back in the provider metadata`, async () => {
      const result = await generateText({
        model: model(),
        prompt: "Once upon a time",
        temperature: 0,
        maxOutputTokens: 8,
        maxRetries: 0,
        providerOptions: { openai: { logprobs: 2 } },
      });
      const logprobs = result.providerMetadata?.openai?.logprobs as
        | { token: string; logprob: number; top_logprobs: { token: string }[] }[]
        | { token: string; logprob: number; top_logprobs: { token: string }[] }[][]
        | undefined;
      assert.ok(logprobs, JSON.stringify(result.providerMetadata));
      // Chat gives one list of tokens; the Responses API one list per output_text part.
      const tokens = Array.isArray(logprobs[0]) ? logprobs.flat() : logprobs;
      const list = tokens as { token: string; logprob: number; top_logprobs: { token: string }[] }[];
      assert.equal(list.length, 8);
      assert.equal(list.map((t) => t.token).join(""), result.text);
      for (const token of list) {
        assert.ok(token.logprob <= 0);
        assert.equal(token.top_logprobs.length, 2);
      }
    });
  }
});
