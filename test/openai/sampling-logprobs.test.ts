import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { getLlama, type LlamaModel } from "node-llama-cpp";
import OpenAI from "openai";
import type { ChatCompletionTokenLogprob } from "openai/resources/chat/completions";
import type { CompletionChoice } from "openai/resources/completions";
import { STORIES, startStack, type OpenAIStack } from "./harness.js";
import { sharedModelsDir } from "../support/models.js";

const STORY = [{ role: "user" as const, content: "Once upon a time" }];

/** The most times any one token occurs in a list of token texts. */
const mostRepeats = (tokens: readonly string[]): number => {
  const counts = new Map<string, number>();
  for (const token of tokens) counts.set(token, (counts.get(token) ?? 0) + 1);
  return Math.max(0, ...counts.values());
};

/** Checks one chat token's logprobs against OpenAI's shape: ≤ 0, bytes of the text, alternatives sorted. */
function assertTokenLogprob(entry: ChatCompletionTokenLogprob, top: number, greedy: boolean): void {
  assert.deepEqual(Object.keys(entry).sort(), ["bytes", "logprob", "token", "top_logprobs"]);
  assert.ok(entry.logprob <= 0, `logprob ${entry.logprob} ≤ 0`);
  assert.deepEqual(entry.bytes, [...Buffer.from(entry.token, "utf8")]);
  assert.equal(entry.top_logprobs.length, top);
  for (const [i, alternative] of entry.top_logprobs.entries()) {
    assert.deepEqual(Object.keys(alternative).sort(), ["bytes", "logprob", "token"]);
    assert.ok(alternative.logprob <= 0);
    if (i > 0) assert.ok(alternative.logprob <= entry.top_logprobs[i - 1]!.logprob, "sorted, most likely first");
  }
  if (greedy && top > 0) {
    // At temperature 0 the chosen token is the most likely one.
    assert.equal(entry.top_logprobs[0]!.token, entry.token);
    assert.equal(entry.top_logprobs[0]!.logprob, entry.logprob);
  }
}

describe("sampling parameters and logprobs through the openai client, on a real scheduler and worker", () => {
  let stack: OpenAIStack;
  let client: OpenAI;
  let model: LlamaModel;

  before(async () => {
    stack = await startStack();
    client = stack.client();
    const llama = await getLlama({ build: "never", gpu: false });
    model = await llama.loadModel({ modelPath: join(sharedModelsDir(), `${STORIES}.gguf`), vocabOnly: true });
  });

  after(async () => {
    await model?.dispose();
    await stack?.close();
  });

  test("chat logprobs: one entry per generated token, ≤ 0, top_logprobs sorted, the tokens spell the content", async () => {
    const data = await client.chat.completions.create({
      model: STORIES,
      messages: STORY,
      max_tokens: 24,
      temperature: 0,
      logprobs: true,
      top_logprobs: 5,
    });
    const choice = data.choices[0]!;
    assert.equal(choice.finish_reason, "length");
    assert.equal(choice.logprobs?.refusal, null);
    const content: ChatCompletionTokenLogprob[] = choice.logprobs!.content!;
    assert.equal(content.length, data.usage!.completion_tokens);
    for (const entry of content) assertTokenLogprob(entry, 5, true);
    assert.equal(content.map((e) => e.token).join(""), choice.message.content);
    // A tiny model is confident somewhere, and unsure somewhere else.
    assert.ok(content.some((e) => e.logprob > -0.5));
    assert.ok(content.some((e) => e.logprob < -0.01));

    const plain = await client.chat.completions.create({
      model: STORIES,
      messages: STORY,
      max_tokens: 24,
      temperature: 0,
    });
    assert.equal(plain.choices[0]!.logprobs, null, "no logprobs unless asked");
    assert.equal(plain.choices[0]!.message.content, choice.message.content, "recording them does not change the text");

    const noTop = await client.chat.completions.create({
      model: STORIES,
      messages: STORY,
      max_tokens: 8,
      temperature: 0,
      logprobs: true,
    });
    for (const entry of noTop.choices[0]!.logprobs!.content!) assertTokenLogprob(entry, 0, true);
  });

  test("streamed chat chunks carry the logprobs of their own tokens, the same as the whole reply's", async () => {
    const body = { model: STORIES, messages: STORY, max_tokens: 20, temperature: 0, logprobs: true, top_logprobs: 3 };
    const whole = await client.chat.completions.create(body);
    const stream = await client.chat.completions.create({ ...body, stream: true });
    const streamed: ChatCompletionTokenLogprob[] = [];
    let text = "";
    let finishChunk: OpenAI.Chat.Completions.ChatCompletionChunk.Choice | null = null;
    for await (const chunk of stream) {
      const choice = chunk.choices[0]!;
      if (choice.finish_reason) finishChunk = choice;
      if (choice.delta.content) {
        text += choice.delta.content;
        assert.ok(choice.logprobs?.content, "a content chunk carries logprobs");
        assert.equal(choice.logprobs.content.map((e) => e.token).join(""), choice.delta.content);
        streamed.push(...choice.logprobs.content);
      }
    }
    assert.equal(finishChunk?.logprobs, null);
    assert.equal(text, whole.choices[0]!.message.content);
    assert.deepEqual(streamed, whole.choices[0]!.logprobs!.content);
  });

  test("completions logprobs: parallel arrays, top_logprobs objects, text_offset; streamed too", async () => {
    const body = { model: STORIES, prompt: "Once upon a time", max_tokens: 16, temperature: 0, logprobs: 3 };
    const data = await client.completions.create(body);
    const choice: CompletionChoice = data.choices[0]!;
    const logprobs = choice.logprobs!;
    assert.equal(logprobs.tokens!.length, data.usage!.completion_tokens);
    assert.equal(logprobs.tokens!.join(""), choice.text);
    assert.equal(logprobs.token_logprobs!.length, logprobs.tokens!.length);
    assert.ok(logprobs.token_logprobs!.every((lp) => lp <= 0));
    let offset = 0;
    for (const [i, token] of logprobs.tokens!.entries()) {
      assert.equal(logprobs.text_offset![i], offset);
      offset += token.length;
      const top = logprobs.top_logprobs![i]!;
      const values = Object.values(top);
      assert.ok(values.length >= 1 && values.length <= 3);
      assert.ok(
        values.every((v, j) => v <= 0 && (j === 0 || v <= values[j - 1]!)),
        "sorted, most likely first",
      );
      assert.equal(top[token], logprobs.token_logprobs![i], "greedy: the chosen token is the top one");
    }

    const stream = await client.completions.create({ ...body, stream: true });
    const tokens: string[] = [];
    const offsets: number[] = [];
    let text = "";
    for await (const chunk of stream) {
      const c = chunk.choices[0]!;
      if (c.text === "") continue;
      assert.equal(c.logprobs!.tokens!.join(""), c.text);
      tokens.push(...c.logprobs!.tokens!);
      offsets.push(...c.logprobs!.text_offset!);
      text += c.text;
    }
    assert.equal(text, choice.text);
    assert.deepEqual(tokens, logprobs.tokens);
    assert.deepEqual(offsets, logprobs.text_offset, "offsets run on across chunks");
  });

  test("frequency_penalty and presence_penalty make the greedy text repeat itself less", async () => {
    const run = async (extra: Record<string, number>) => {
      const data = await client.chat.completions.create({
        model: STORIES,
        messages: STORY,
        max_tokens: 96,
        temperature: 0,
        logprobs: true,
        ...extra,
      });
      return data.choices[0]!.logprobs!.content!.map((e) => e.token);
    };
    const plain = await run({});
    const frequency = await run({ frequency_penalty: 2 });
    const presence = await run({ presence_penalty: 2 });
    assert.ok(
      mostRepeats(frequency) < mostRepeats(plain),
      `frequency_penalty: ${mostRepeats(frequency)} < ${mostRepeats(plain)}`,
    );
    assert.ok(
      mostRepeats(presence) < mostRepeats(plain),
      `presence_penalty: ${mostRepeats(presence)} < ${mostRepeats(plain)}`,
    );
    // A negative penalty rewards repeats.
    const negative = await run({ frequency_penalty: -2 });
    assert.ok(mostRepeats(negative) > mostRepeats(plain), `negative: ${mostRepeats(negative)} > ${mostRepeats(plain)}`);
  });

  test("logit_bias by token id: -100 bans the greedy token, 100 forces a token; an unknown id is a 400", async () => {
    const body = { model: STORIES, messages: STORY, max_tokens: 6, temperature: 0, logprobs: true } as const;
    const plain = await client.chat.completions.create(body);
    const first = plain.choices[0]!.logprobs!.content![0]!.token;
    // The id of the token as it came (SentencePiece would otherwise prepend a space).
    const firstIds = model.tokenize(first, false, first.startsWith(" ") ? undefined : "trimLeadingSpace");
    assert.equal(firstIds.length, 1, `"${first}" is one token: ${firstIds.join(",")}`);
    const banned = await client.chat.completions.create({ ...body, logit_bias: { [String(firstIds[0])]: -100 } });
    assert.notEqual(banned.choices[0]!.logprobs!.content![0]!.token, first);

    const forcedId = model.tokenize("dragon")[0]!;
    const forcedText = model.detokenize([forcedId]);
    const forced = await client.chat.completions.create({ ...body, logit_bias: { [String(forcedId)]: 100 } });
    const tokens = forced.choices[0]!.logprobs!.content!.map((e) => e.token.trim());
    assert.ok(
      tokens.length > 0 && tokens.every((t) => t === forcedText.trim()),
      `all ${forcedText}: ${tokens.join("|")}`,
    );

    await assert.rejects(client.chat.completions.create({ ...body, logit_bias: { "999999": 5 } }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.BadRequestError, String(error));
      assert.equal(error.param, "logit_bias");
      assert.equal(error.code, "invalid_value");
      assert.match(error.message, /999999.*vocabulary/);
      return true;
    });
    await assert.rejects(
      client.chat.completions.create({ ...body, logit_bias: { "5": 150 } }),
      (error: unknown) => error instanceof OpenAI.BadRequestError && error.param === "logit_bias.5",
    );
  });

  test("best_of returns the candidate with the highest mean token logprob, and counts every candidate's usage", async () => {
    const { data, response } = await client.completions
      .create({ model: STORIES, prompt: "Once upon a time", max_tokens: 12, temperature: 1.5, seed: 3, best_of: 4 })
      .withResponse();
    assert.equal(data.choices.length, 1);
    assert.equal(data.choices[0]!.logprobs, null, "logprobs were not asked for");
    const ids = (response.headers.get("x-corral-job-id") ?? "").split(",").map((id) => id.trim());
    assert.equal(ids.length, 4, "one job per candidate");
    const candidates = await Promise.all(ids.map((id) => stack.job(id)));
    const mean = (r: (typeof candidates)[number]) => {
      const lps = r.result!.logprobs!;
      return lps.reduce((s, t) => s + t.logprob, 0) / lps.length;
    };
    const texts = new Set(candidates.map((r) => r.result!.text));
    assert.ok(texts.size > 1, "the candidates differ (seed + i each)");
    const best = candidates.reduce((a, b) => (mean(b) > mean(a) ? b : a));
    assert.equal(data.choices[0]!.text, best.result!.text);
    const completion = candidates.reduce((s, r) => s + r.result!.usage.completion_tokens, 0);
    assert.equal(data.usage!.completion_tokens, completion);

    const withLogprobs = await client.completions.create({
      model: STORIES,
      prompt: "Once upon a time",
      max_tokens: 12,
      temperature: 1.5,
      seed: 3,
      best_of: 4,
      logprobs: 2,
    });
    assert.equal(withLogprobs.choices[0]!.text, data.choices[0]!.text, "the same seeds pick the same best");
    assert.equal(withLogprobs.choices[0]!.logprobs!.tokens!.join(""), data.choices[0]!.text);

    await assert.rejects(
      client.completions.create({ model: STORIES, prompt: "x", n: 3, best_of: 2 }),
      (error: unknown) => error instanceof OpenAI.BadRequestError && error.param === "best_of",
    );
  });
});
