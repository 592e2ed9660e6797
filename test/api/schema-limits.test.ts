import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { API_KEY, STORIES, startStack, type OpenAIStack } from "../openai/harness.js";

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

const bigEnum = {
  type: "json_schema",
  json_schema: {
    name: "color",
    schema: {
      type: "object",
      properties: { color: { enum: Array.from({ length: 20_000 }, (_, i) => `color-${i}`) } },
    },
  },
};

/** Issue 16: a json_schema too big to sample in time is refused at submit on every route. */
describe("response_format schemas over the size limits", () => {
  let stack: OpenAIStack;

  before(async () => {
    stack = await startStack({ worker: false });
  });
  after(async () => {
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
  const expectRefused = (answer: { status: number; body: ErrorBody }) => {
    assert.equal(answer.status, 400, JSON.stringify(answer.body));
    assert.equal(answer.body.error.code, "unsupported_schema");
    assert.equal(answer.body.error.param, "response_format.json_schema.schema");
    assert.match(answer.body.error.message, /at \/properties\/color\/enum: `enum` lists 20000 alternatives/);
  };

  test("POST /v1/jobs refuses an enum of 20,000 strings, naming the keyword and path, and queues nothing", async () => {
    const before = await stack.redis.zcard(stack.keys.tenantJobs("lab"));
    expectRefused(await post("/jobs", { model: STORIES, prompt: "Colors:", max_tokens: 8, response_format: bigEnum }));
    assert.equal(await stack.redis.zcard(stack.keys.tenantJobs("lab")), before);
  });

  test("POST /v1/chat/completions refuses it too", async () => {
    const messages = [{ role: "user", content: "A color?" }];
    expectRefused(
      await post("/chat/completions", { model: STORIES, messages, max_tokens: 8, response_format: bigEnum }),
    );
  });
});
