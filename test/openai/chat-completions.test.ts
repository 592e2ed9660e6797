import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Ajv } from "ajv";
import OpenAI from "openai";
import { API_KEY, STORIES, startStack, type OpenAIStack } from "./harness.js";

const STORY = [{ role: "user" as const, content: "Once upon a time" }];
/**
 * A generation long enough to cancel midway. The prompt plus max_tokens must fit the
 * context of 1024 tokens (one kept free), or the request is refused at submit.
 */
const LONG_MAX_TOKENS = 900;

describe("POST /v1/chat/completions through the openai client, on a real scheduler and worker", () => {
  let stack: OpenAIStack;
  let client: OpenAI;

  before(async () => {
    stack = await startStack();
    client = stack.client();
  });

  after(async () => {
    await stack?.close();
  });

  test("answers in OpenAI's shape, usage adds up, finish_reason is length when max_tokens is hit", async () => {
    const { data, response } = await client.chat.completions
      .create({ model: STORIES, messages: STORY, max_tokens: 12, temperature: 0 })
      .withResponse();
    assert.match(data.id, /^chatcmpl-[A-Za-z0-9_-]+$/);
    assert.equal(data.object, "chat.completion");
    assert.equal(data.model, STORIES);
    assert.ok(Number.isInteger(data.created));
    assert.ok(Math.abs(data.created - Date.now() / 1000) < 60, "created is in seconds");
    assert.equal(data.choices.length, 1);
    const [choice] = data.choices;
    assert.equal(choice!.index, 0);
    assert.equal(choice!.message.role, "assistant");
    assert.ok(choice!.message.content && choice!.message.content.length > 0);
    assert.equal(choice!.finish_reason, "length");
    assert.equal(choice!.logprobs, null);
    assert.equal(data.usage!.completion_tokens, 12);
    assert.ok(data.usage!.prompt_tokens > 0);
    assert.equal(data.usage!.total_tokens, data.usage!.prompt_tokens + data.usage!.completion_tokens);
    assert.deepEqual(Object.keys(data).sort(), ["choices", "created", "id", "model", "object", "usage"]);

    const jobId = response.headers.get("x-corral-job-id");
    assert.match(jobId ?? "", /^job_/);
    assert.equal(response.headers.get("x-corral-worker"), "openai-test:cpu0");
    assert.match(response.headers.get("x-corral-queue-ms") ?? "", /^\d+$/);
    assert.match(response.headers.get("x-corral-ttft-ms") ?? "", /^\d+$/);
    const record = await stack.job(jobId!);
    assert.equal(record.status, "succeeded");
    assert.equal(record.source, "openai");
    assert.equal(record.result?.text, choice!.message.content);
  });

  test("finish_reason is stop when a stop sequence ends the text; text parts and unknown fields are accepted", async () => {
    const data = await client.chat.completions.create({
      model: STORIES,
      messages: [{ role: "user", content: [{ type: "text", text: "Once upon a time" }] }],
      max_tokens: 200,
      temperature: 0,
      stop: ["."],
      // @ts-expect-error: an extra field the server must ignore
      some_future_field: { anything: true },
    });
    assert.equal(data.choices[0]!.finish_reason, "stop");
    assert.ok(!data.choices[0]!.message.content!.includes("."));
    assert.ok(data.usage!.completion_tokens < 200);
  });

  test("streamed deltas join to the non-streamed text; role first, finish chunk, usage chunk, then the end", async () => {
    const body = { model: STORIES, messages: STORY, max_tokens: 48, temperature: 0, seed: 7 };
    const whole = await client.chat.completions.create(body);
    const stream = await client.chat.completions.create({
      ...body,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);

    assert.ok(chunks.length > 3);
    const ids = new Set(chunks.map((c) => c.id));
    assert.equal(ids.size, 1);
    assert.match([...ids][0]!, /^chatcmpl-/);
    assert.ok(chunks.every((c) => c.object === "chat.completion.chunk" && c.model === STORIES));
    assert.deepEqual(chunks[0]!.choices[0]!.delta, { role: "assistant", content: "" });
    const usageChunk = chunks.at(-1)!;
    assert.deepEqual(usageChunk.choices, []);
    assert.deepEqual(usageChunk.usage, whole.usage);
    const finish = chunks.at(-2)!;
    assert.equal(finish.choices[0]!.finish_reason, "length");
    assert.deepEqual(finish.choices[0]!.delta, {});
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    assert.equal(text, whole.choices[0]!.message.content);
    assert.ok(
      chunks.slice(0, -1).every((c) => c.usage === null),
      "usage is null on every chunk but the last",
    );
  });

  test("concurrent streams, running or queued, share the scheduler's one stream-reading Redis connection", async () => {
    const name = `name=corral-sse:${stack.prefix} `;
    let most = 0;
    let own = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const clients = ((await stack.redis.client("LIST")) as string).split("\n");
        most = Math.max(most, clients.filter((line) => line.includes(name)).length);
        // A stream reading on a connection of its own would be named plain corral-sse.
        own = Math.max(own, clients.filter((line) => line.includes("name=corral-sse ")).length);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const texts = await Promise.all(
      [0, 1, 2, 3].map(async (i) => {
        const stream = await client.chat.completions.create({
          model: STORIES,
          messages: [{ role: "user", content: `Tell story ${i}` }],
          max_tokens: 16,
          temperature: 0,
          stream: true,
        });
        let text = "";
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
        return text;
      }),
    );
    sampling = false;
    await sampler;
    assert.ok(texts.every((text) => text.length > 0));
    assert.equal(most, 1);
    assert.equal(own, 0, "no stream opened a connection of its own");
  });

  test("without include_usage there is no usage chunk", async () => {
    const stream = await client.chat.completions.create({
      model: STORIES,
      messages: STORY,
      max_tokens: 5,
      temperature: 0,
      stream: true,
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.equal(chunks.at(-1)!.choices[0]!.finish_reason, "length");
    assert.ok(chunks.every((c) => !("usage" in c)));
  });

  test("the first token reaches the client before the job finishes", async () => {
    const { data: stream, response } = await client.chat.completions
      .create({ model: STORIES, messages: STORY, max_tokens: 600, temperature: 0, stream: true })
      .withResponse();
    let firstContentAt: number | null = null;
    for await (const chunk of stream) {
      if (firstContentAt === null && chunk.choices[0]?.delta.content) firstContentAt = Date.now();
    }
    assert.ok(firstContentAt !== null);
    const record = await stack.job(response.headers.get("x-corral-job-id")!);
    assert.equal(record.status, "succeeded");
    assert.ok(
      firstContentAt < record.finished_at!,
      `first content at ${firstContentAt}, job finished at ${record.finished_at}`,
    );
  });

  test("n: 3 gives choices 0, 1, 2, one job each, streaming or not", async () => {
    const { data, response } = await client.chat.completions
      .create({ model: STORIES, messages: STORY, max_tokens: 6, temperature: 0, n: 3 })
      .withResponse();
    assert.deepEqual(
      data.choices.map((c) => c.index),
      [0, 1, 2],
    );
    const jobIds = response.headers.get("x-corral-job-id")!.split(",");
    assert.equal(new Set(jobIds).size, 3);
    for (const [i, id] of jobIds.entries()) {
      const record = await stack.job(id);
      assert.equal(record.result?.text, data.choices[i]!.message.content);
    }
    assert.equal(data.usage!.completion_tokens, 18);
    assert.equal(data.usage!.total_tokens, data.usage!.prompt_tokens + 18);

    const stream = await client.chat.completions.create({
      model: STORIES,
      messages: STORY,
      max_tokens: 6,
      temperature: 0,
      n: 3,
      stream: true,
    });
    const texts = ["", "", ""];
    const finished: number[] = [];
    const roles: number[] = [];
    for await (const chunk of stream) {
      const c = chunk.choices[0]!;
      if (c.delta.role) roles.push(c.index);
      texts[c.index] += c.delta.content ?? "";
      if (c.finish_reason) finished.push(c.index);
    }
    assert.deepEqual(roles, [0, 1, 2]);
    assert.deepEqual([...finished].sort(), [0, 1, 2]);
    assert.deepEqual(
      texts,
      data.choices.map((c) => c.message.content),
    );
  });

  test("response_format json_schema: the output parses and validates against the schema", async () => {
    const schema = {
      type: "object",
      properties: {
        name: { type: "string", maxLength: 12 },
        happy: { type: "boolean" },
        color: { enum: ["red", "green", "blue"] },
      },
      required: ["name", "happy", "color"],
      additionalProperties: false,
    };
    const data = await client.chat.completions.create({
      model: STORIES,
      messages: [{ role: "user", content: "Describe Lily as JSON." }],
      max_tokens: 120,
      temperature: 0,
      response_format: { type: "json_schema", json_schema: { name: "person", schema, strict: true } },
    });
    const parsed: unknown = JSON.parse(data.choices[0]!.message.content!);
    const validate = new Ajv().compile(schema);
    assert.ok(validate(parsed), JSON.stringify(validate.errors));
  });

  test("a schema the grammar cannot enforce is a 400 naming the problem, before anything is queued", async () => {
    const before = await stack.redis.zcard(stack.keys.tenantJobs("lab"));
    await assert.rejects(
      client.chat.completions.create({
        model: STORIES,
        messages: STORY,
        response_format: {
          type: "json_schema",
          json_schema: {
            name: "code",
            schema: { type: "object", properties: { id: { type: "string", pattern: "^(?!admin)[a-z]+$" } } },
          },
        },
      }),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.BadRequestError);
        assert.equal(error.param, "response_format.json_schema.schema");
        assert.equal(error.code, "unsupported_schema");
        assert.match(error.message, /pattern.*lookarounds/);
        return true;
      },
    );
    assert.equal(await stack.redis.zcard(stack.keys.tenantJobs("lab")), before);
  });

  test("errors come through the client's classes: unknown model, bad types, unsupported features", async () => {
    await assert.rejects(
      client.chat.completions.create({ model: "no-such-model", messages: STORY }),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.NotFoundError);
        assert.equal(error.code, "model_not_found");
        assert.equal(error.param, "model");
        assert.match(error.message, /stories260K/);
        return true;
      },
    );
    const badRequests: [Record<string, unknown>, string, RegExp][] = [
      [{ temperature: "hot" }, "temperature", /expected number/],
      [{ max_tokens: 0 }, "max_tokens", /max_tokens/],
      [{ messages: [{ role: "user", content: 42 }] }, "messages.0.content", /string or an array/],
      [{ stop: ["a", "b", "c", "d", "e"] }, "stop", /at most 4/],
      [{ functions: [{ name: "f" }] }, "functions", /not supported/],
      [{ logit_bias: { "50256": 101 } }, "logit_bias.50256", /100/],
      [{ frequency_penalty: 3 }, "frequency_penalty", /2/],
      [
        { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "http://x/y.png" } }] }] },
        "messages.0.content.0",
        /image_url.*not supported/,
      ],
    ];
    for (const [extra, param, message] of badRequests) {
      await assert.rejects(
        client.chat.completions.create({ model: STORIES, messages: STORY, ...extra } as never),
        (error: unknown) => {
          assert.ok(error instanceof OpenAI.BadRequestError, `${param}: ${String(error)}`);
          assert.equal(error.param, param);
          assert.equal(error.type, "invalid_request_error");
          assert.match(error.message, message);
          return true;
        },
      );
    }
  });

  test("aborting a streaming request cancels its job", async () => {
    const controller = new AbortController();
    const { data: stream, response } = await client.chat.completions
      .create(
        { model: STORIES, messages: STORY, max_tokens: LONG_MAX_TOKENS, temperature: 0, stream: true },
        { signal: controller.signal },
      )
      .withResponse();
    const jobId = response.headers.get("x-corral-job-id")!;
    try {
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) controller.abort();
      }
    } catch (error) {
      assert.ok(error instanceof OpenAI.APIUserAbortError || (error as Error).name === "AbortError", String(error));
    }
    const record = await stack.waitForJob(jobId);
    assert.equal(record.status, "cancelled");
    assert.ok(record.result === null || record.result.usage.completion_tokens < LONG_MAX_TOKENS);
  });

  test("a job cancelled with DELETE /v1/jobs/:id ends its stream with an error event (job_cancelled)", async () => {
    const { data: stream, response } = await client.chat.completions
      .create({ model: STORIES, messages: STORY, max_tokens: LONG_MAX_TOKENS, temperature: 0, stream: true })
      .withResponse();
    const jobId = response.headers.get("x-corral-job-id")!;
    let deleted = false;
    await assert.rejects(
      async () => {
        for await (const chunk of stream) {
          if (deleted || !chunk.choices[0]?.delta.content) continue;
          deleted = true;
          const cancel = await fetch(`${stack.baseURL}/jobs/${jobId}`, {
            method: "DELETE",
            headers: { authorization: `Bearer ${API_KEY}` },
          });
          assert.equal(cancel.status, 200);
        }
      },
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.APIError, String(error));
        assert.equal(error.code, "job_cancelled");
        return true;
      },
    );
    assert.equal((await stack.waitForJob(jobId)).status, "cancelled");
  });

  test("a job cancelled with DELETE /v1/jobs/:id fails its non-streaming request with a 409", async () => {
    const known = new Set(await stack.redis.zrange(stack.keys.tenantJobs("lab"), 0, -1));
    const request = client.chat.completions.create({
      model: STORIES,
      messages: STORY,
      max_tokens: LONG_MAX_TOKENS,
      temperature: 0,
    });
    // The 409 may come back before the DELETE's own answer: mark the rejection handled now,
    // so it is not reported as unhandled before assert.rejects below looks at it.
    request.catch(() => undefined);
    let jobId: string | undefined;
    while (!jobId) {
      jobId = (await stack.redis.zrange(stack.keys.tenantJobs("lab"), 0, -1)).find((id) => !known.has(id));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await stack.waitForJob(jobId, (record) => record.status !== "queued");
    await fetch(`${stack.baseURL}/jobs/${jobId}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    await assert.rejects(request, (error: unknown) => {
      assert.ok(error instanceof OpenAI.ConflictError, String(error));
      assert.equal(error.code, "job_cancelled");
      assert.equal(error.headers?.get("x-should-retry"), "false", "clients must not queue the work again");
      return true;
    });
  });

  test("GET /v1/models lists models in OpenAI's shape (created in seconds)", async () => {
    const models = [];
    for await (const model of client.models.list()) models.push(model);
    const stories = models.find((m) => m.id === STORIES);
    assert.ok(stories);
    assert.equal(stories.object, "model");
    assert.equal(stories.owned_by, "corral");
    // Seconds, not milliseconds (the catalog keeps the file's mtime in ms).
    assert.ok(Number.isInteger(stories.created), "created is an integer");
    assert.ok(
      stories.created > 1_000_000_000 && stories.created <= Date.now() / 1000 + 1,
      `created ${stories.created}`,
    );
    const one = await client.models.retrieve(STORIES);
    assert.equal(one.id, STORIES);
    await assert.rejects(client.models.retrieve("nope"), OpenAI.NotFoundError);
  });
});
