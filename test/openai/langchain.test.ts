import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ChatOpenAI } from "@langchain/openai";
import { HumanMessage, ToolMessage, type AIMessage, type AIMessageChunk } from "@langchain/core/messages";
import { tool } from "@langchain/core/tools";
import { z } from "zod";
import { API_KEY, STORIES, startStack, type OpenAIStack } from "./harness.js";

/**
 * LangChain JS (@langchain/openai 1.5, @langchain/core 1.4) against Corral, on real
 * llama.cpp: `bindTools`, `withStructuredOutput(…, {method: "functionCalling"})`, tool
 * messages, streaming and logprobs, through chat completions and through the Responses API
 * (`useResponsesApi`).
 */

const weatherInput = z.object({
  city: z.string().min(1).max(20),
  unit: z.enum(["celsius", "fahrenheit"]),
});
const weather = tool(async (input) => `It is sunny in ${input.city}.`, {
  name: "get_weather",
  description: "The weather in a city",
  schema: weatherInput,
});
const person = z.object({
  name: z.string().min(1).max(12),
  age: z.number().int().min(0).max(120),
  email: z.email(),
});

describe("LangChain JS against a real scheduler and worker", () => {
  let stack: OpenAIStack;
  const chatModel = (options: { useResponsesApi?: boolean; logprobs?: boolean; topLogprobs?: number } = {}) =>
    new ChatOpenAI({
      model: STORIES,
      apiKey: API_KEY,
      configuration: { baseURL: stack.baseURL },
      temperature: 0,
      maxTokens: 300,
      maxRetries: 0,
      ...options,
    });

  before(async () => {
    stack = await startStack();
  });

  after(async () => {
    await stack?.close();
  });

  for (const useResponsesApi of [false, true]) {
    const api = useResponsesApi ? "responses" : "chat completions";

    // @langchain/openai 1.5.8 drops a string tool_choice ("required") on its Responses path, so that path names the tool.
    const forced = useResponsesApi ? "get_weather" : "required";

    test(`${api}: bindTools with tool_choice ${forced} gives tool_calls whose args parse; a ToolMessage goes back`, async () => {
      const model = chatModel({ useResponsesApi }).bindTools([weather], {
        tool_choice: forced,
        parallel_tool_calls: false,
      });
      const question = new HumanMessage("What is the weather in Paris?");
      const reply: AIMessage = await model.invoke([question]);
      assert.equal(reply.tool_calls?.length, 1);
      const call = reply.tool_calls![0]!;
      assert.equal(call.name, "get_weather");
      assert.ok(call.id);
      assert.ok(weatherInput.safeParse(call.args).success, JSON.stringify(call.args));

      const result = await weather.invoke(call);
      assert.ok(result instanceof ToolMessage);
      const answer = await chatModel({ useResponsesApi })
        .bindTools([weather], { tool_choice: "none" })
        .invoke([question, reply, result]);
      assert.equal(answer.tool_calls?.length ?? 0, 0);
      assert.ok(answer.text.length > 0);
    });

    test(`${api}: withStructuredOutput with method functionCalling returns an object valid for the zod schema`, async () => {
      const structured = chatModel({ useResponsesApi }).withStructuredOutput(person, {
        method: "functionCalling",
        name: "person",
      });
      const output = await structured.invoke("Describe a person.");
      assert.ok(person.safeParse(output).success, JSON.stringify(output));
    });

    test(`${api}: a bound tool call streams as tool_call_chunks that concatenate to the call`, async () => {
      const model = chatModel({ useResponsesApi }).bindTools([weather], {
        tool_choice: forced,
        parallel_tool_calls: false,
      });
      let whole: AIMessageChunk | undefined;
      for await (const chunk of await model.stream("What is the weather in Paris?")) {
        whole = whole ? whole.concat(chunk) : chunk;
      }
      assert.equal(whole?.tool_calls?.length, 1);
      assert.ok(weatherInput.safeParse(whole!.tool_calls![0]!.args).success);
    });
  }

  test("chat completions: logprobs and topLogprobs come back in response_metadata, one per token", async () => {
    const reply = await chatModel({ logprobs: true, topLogprobs: 2 }).invoke("Once upon a time");
    const logprobs = reply.response_metadata.logprobs as {
      content: { token: string; logprob: number; top_logprobs: { token: string }[] }[];
    };
    assert.equal(logprobs.content.length, reply.usage_metadata?.output_tokens);
    assert.equal(logprobs.content.map((t) => t.token).join(""), reply.text);
    for (const token of logprobs.content) {
      assert.ok(token.logprob <= 0);
      assert.equal(token.top_logprobs.length, 2);
    }
  });
});
