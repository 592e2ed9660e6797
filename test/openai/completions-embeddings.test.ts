import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { API_KEY, STORIES, startStack, type OpenAIStack } from "./harness.js";

describe("POST /v1/completions and /v1/embeddings through the openai client, and raw SSE", () => {
  let stack: OpenAIStack;
  let client: OpenAI;

  before(async () => {
    // Prompts are not counted at submit here: the last two tests use a prompt too long for
    // the context to pin down what a job that fails at the worker does to its request
    // (test/api/prompt-length.test.ts covers the refusal at submit).
    stack = await startStack({ env: { CORRAL_CHECK_PROMPT_LENGTH: "false" } });
    client = stack.client();
  });

  after(async () => {
    await stack?.close();
  });

  test("a text completion in OpenAI's shape, with usage and finish_reason length", async () => {
    const { data, response } = await client.completions
      .create({ model: STORIES, prompt: "Once upon a time", max_tokens: 10, temperature: 0 })
      .withResponse();
    assert.match(data.id, /^cmpl-/);
    assert.equal(data.object, "text_completion");
    assert.equal(data.model, STORIES);
    assert.ok(Math.abs(data.created - Date.now() / 1000) < 60);
    assert.equal(data.choices.length, 1);
    const [choice] = data.choices;
    assert.equal(choice!.index, 0);
    assert.equal(choice!.finish_reason, "length");
    assert.equal(choice!.logprobs, null);
    assert.ok(choice!.text.startsWith(", there was"), JSON.stringify(choice!.text));
    assert.equal(data.usage!.completion_tokens, 10);
    assert.equal(data.usage!.total_tokens, data.usage!.prompt_tokens + 10);
    assert.match(response.headers.get("x-corral-job-id") ?? "", /^job_/);
  });

  test("without max_tokens a completion stops at OpenAI's default of 16 tokens", async () => {
    const data = await client.completions.create({ model: STORIES, prompt: "Once upon a time", temperature: 0 });
    assert.equal(data.usage!.completion_tokens, 16);
    assert.equal(data.choices[0]!.finish_reason, "length");
  });

  test("a prompt array with n: 2 gives choices indexed prompt by prompt; echo prepends each prompt", async () => {
    const prompts = ["Once upon a time", "The cat", "Tom and Sue"];
    const { data, response } = await client.completions
      .create({ model: STORIES, prompt: prompts, n: 2, max_tokens: 5, temperature: 0, echo: true })
      .withResponse();
    assert.deepEqual(
      data.choices.map((c) => c.index),
      [0, 1, 2, 3, 4, 5],
    );
    const jobIds = response.headers.get("x-corral-job-id")!.split(",");
    assert.equal(jobIds.length, 6);
    for (const [i, choice] of data.choices.entries()) {
      const prompt = prompts[Math.floor(i / 2)]!;
      assert.ok(choice.text.startsWith(prompt), `choice ${i} echoes ${prompt}: ${JSON.stringify(choice.text)}`);
      const record = await stack.job(jobIds[i]!);
      assert.equal(prompt + record.result!.text, choice.text);
    }
    // Each prompt alone gives the same continuation as inside the array.
    const alone = await client.completions.create({
      model: STORIES,
      prompt: prompts[1]!,
      max_tokens: 5,
      temperature: 0,
    });
    assert.equal(prompts[1] + alone.choices[0]!.text, data.choices[2]!.text);
    assert.equal(data.usage!.completion_tokens, 30);
  });

  test("streamed text_completion chunks join to the non-streamed text, with a usage chunk", async () => {
    const body = { model: STORIES, prompt: "Once upon a time", max_tokens: 40, temperature: 0 };
    const whole = await client.completions.create(body);
    const stream = await client.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
    const chunks: OpenAI.Completions.Completion[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.ok(chunks.every((c) => c.object === "text_completion" && c.id.startsWith("cmpl-")));
    assert.equal(chunks.map((c) => c.choices[0]?.text ?? "").join(""), whole.choices[0]!.text);
    assert.equal(chunks.at(-2)!.choices[0]!.finish_reason, "length");
    assert.deepEqual(chunks.at(-1)!.choices, []);
    assert.deepEqual(chunks.at(-1)!.usage, whole.usage);
  });

  test("embeddings: vectors of the model's dimension, as floats and as the client's default base64", async () => {
    const floats = await client.embeddings.create({
      model: STORIES,
      input: ["a little girl", "a big red ball"],
      encoding_format: "float",
    });
    assert.equal(floats.object, "list");
    assert.equal(floats.model, STORIES);
    assert.deepEqual(
      floats.data.map((d) => [d.object, d.index, d.embedding.length]),
      [
        ["embedding", 0, 64],
        ["embedding", 1, 64],
      ],
    );
    assert.ok(floats.data.every((d) => d.embedding.every(Number.isFinite)));
    assert.notDeepEqual(floats.data[0]!.embedding, floats.data[1]!.embedding);
    assert.ok(floats.usage.prompt_tokens > 0);
    assert.equal(floats.usage.total_tokens, floats.usage.prompt_tokens);

    // No encoding_format: the client asks for base64 and decodes float32 itself.
    const decoded = await client.embeddings.create({ model: STORIES, input: "a little girl" });
    assert.equal(decoded.data.length, 1);
    assert.equal(decoded.data[0]!.embedding.length, 64);
    for (const [i, value] of decoded.data[0]!.embedding.entries()) {
      assert.ok(Math.abs(value - floats.data[0]!.embedding[i]!) < 1e-5, `component ${i}`);
    }

    await assert.rejects(
      client.embeddings.create({ model: STORIES, input: "x", dimensions: 32 }),
      (error: unknown) => error instanceof OpenAI.BadRequestError && error.param === "dimensions",
    );
  });

  test("raw SSE framing for curl users: text/event-stream, data: lines, blank-line separated, [DONE] last", async () => {
    const response = await fetch(`${stack.baseURL}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({
        model: STORIES,
        messages: [{ role: "user", content: "Once upon a time" }],
        max_tokens: 8,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
    assert.equal(response.headers.get("cache-control"), "no-cache, no-transform");
    assert.match(response.headers.get("x-corral-job-id") ?? "", /^job_/);
    const raw = await response.text();
    assert.ok(raw.endsWith("data: [DONE]\n\n"), JSON.stringify(raw.slice(-40)));
    const events = raw.split("\n\n");
    assert.equal(events.pop(), "", "the stream ends with a blank line");
    assert.ok(events.length >= 4);
    for (const event of events) {
      assert.ok(!event.includes("\n"), `one line per event: ${JSON.stringify(event)}`);
      assert.ok(event.startsWith("data: "), JSON.stringify(event));
    }
    assert.equal(events.at(-1), "data: [DONE]");
    const payloads = events.slice(0, -1).map((event) => JSON.parse(event.slice("data: ".length)));
    assert.equal(payloads[0].choices[0].delta.role, "assistant");
    assert.equal(payloads.at(-1).usage.completion_tokens, 8);
  });

  test("when one prompt of an array fails, the request fails with its error and the other jobs are withdrawn", async () => {
    const { response } = await client.completions
      .create({ model: STORIES, prompt: ["x ".repeat(1100), "Once upon a time"], max_tokens: 1000, temperature: 0 })
      .withResponse()
      .catch((error: unknown) => {
        assert.ok(error instanceof OpenAI.BadRequestError, String(error));
        assert.equal(error.code, "context_length_exceeded");
        assert.equal(error.param, "prompt");
        return { response: null };
      });
    assert.equal(response, null, "the request failed");
    // The last two jobs of the tenant (same creation ms, so in no particular order).
    const ids = await stack.redis.zrange(stack.keys.tenantJobs("lab"), -2, -1);
    const records = await Promise.all(ids.map((id) => stack.waitForJob(id)));
    assert.deepEqual(records.map((r) => r.status).sort(), ["cancelled", "failed"]);
    const cancelled = records.find((r) => r.status === "cancelled")!;
    assert.ok((cancelled.result?.usage.completion_tokens ?? 0) < 1000, "the long job did not run to the end");
  });

  test("a streaming request that fails before its first token gets a plain HTTP error", async () => {
    const response = await fetch(`${stack.baseURL}/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ model: STORIES, prompt: "x ".repeat(1100), max_tokens: 8, stream: true }),
    });
    assert.equal(response.status, 400, await response.clone().text());
    const body = (await response.json()) as { error: { code: string; param: string; type: string } };
    assert.equal(body.error.code, "context_length_exceeded");
    assert.equal(body.error.param, "prompt");
    assert.equal(body.error.type, "invalid_request_error");
  });
});
