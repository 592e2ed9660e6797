import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import OpenAI, { toFile } from "openai";
import { Queue } from "bullmq";
import { JobPayload, laneName } from "@corral/shared";
import { AUDIO_TOKENS_PER_SECOND } from "@corral/scheduler";
import { API_KEY, OTHER_KEY, STORIES, startStack, type OpenAIStack } from "./harness.js";
import { JFK_SECONDS, WHISPER_TEST_MODEL, audioForm, jfkMp3, jfkWav } from "./audio-fixtures.js";

/** The error body of a failed request, with its status. */
async function post(stack: OpenAIStack, path: string, body: FormData | string, key = API_KEY) {
  const response = await fetch(`${stack.baseURL}${path}`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${key}`,
      ...(typeof body === "string" ? { "content-type": "application/json" } : {}),
    },
    body,
  });
  const text = await response.text();
  let json: { error?: { message: string; type: string; param: string | null; code: string } } = {};
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    // Not JSON: left empty.
  }
  return { status: response.status, error: json.error, text };
}

const model = { model: WHISPER_TEST_MODEL };

/** Starts a transcription that waits (no worker), returns its job id and the request's abort. */
async function queueTranscription(stack: OpenAIStack, key = API_KEY) {
  const abort = new AbortController();
  const request = fetch(`${stack.baseURL}/audio/transcriptions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}` },
    body: audioForm(jfkMp3(), { ...model, language: "en", prompt: "JFK speaking." }, "jfk.mp3"),
    signal: abort.signal,
  }).catch((error: unknown) => error);
  const jobs = async () =>
    (
      (await (await fetch(`${stack.baseURL}/jobs`, { headers: { authorization: `Bearer ${key}` } })).json()) as {
        data: { id: string; status: string; model: string }[];
      }
    ).data;
  const before = new Set((await jobs()).map((j) => j.id));
  for (;;) {
    const fresh = (await jobs()).find((j) => !before.has(j.id));
    if (fresh) return { id: fresh.id, abort, request };
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe("/v1/audio: models, bad input and limits (no worker)", () => {
  let stack: OpenAIStack;
  let client: OpenAI;

  before(async () => {
    stack = await startStack({
      worker: false,
      whisper: true,
      env: { CORRAL_MAX_AUDIO_BYTES: "200KB", CORRAL_MAX_AUDIO_SECONDS: "10" },
    });
    client = stack.client();
  });
  after(async () => {
    await stack?.close();
  });

  test("GET /v1/models lists the whisper.cpp models with kind whisper beside the GGUFs (kind llm)", async () => {
    const models = (await (
      await fetch(`${stack.baseURL}/models`, { headers: { authorization: `Bearer ${API_KEY}` } })
    ).json()) as { data: { id: string; corral: { kind: string; file: string; architecture: string } }[] };
    const whisper = models.data.find((m) => m.id === WHISPER_TEST_MODEL);
    assert.ok(whisper, `no ${WHISPER_TEST_MODEL} in ${models.data.map((m) => m.id).join(", ")}`);
    assert.equal(whisper.corral.kind, "whisper");
    assert.equal(whisper.corral.file, `whisper/${WHISPER_TEST_MODEL}.bin`);
    assert.equal(whisper.corral.architecture, "whisper");
    assert.equal(models.data.find((m) => m.id === STORIES)?.corral.kind, "llm");
  });

  test("a file that is not audio is a 400 invalid_audio naming file (openai client)", async () => {
    await assert.rejects(
      client.audio.transcriptions.create({
        model: WHISPER_TEST_MODEL,
        file: await toFile(Buffer.from("this is a text file, not speech\n".repeat(20)), "notes.wav"),
      }),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.BadRequestError, String(error));
        assert.equal(error.param, "file");
        assert.equal(error.code, "invalid_audio");
        return true;
      },
    );
  });

  test("a 0-byte file is a 400 empty_audio naming file", async () => {
    const { status, error } = await post(stack, "/audio/transcriptions", audioForm(Buffer.alloc(0), model));
    assert.equal(status, 400);
    assert.equal(error?.param, "file");
    assert.equal(error?.code, "empty_audio");
  });

  test("a WAV cut short (its header promises more than decodes) is a 400 truncated_audio", async () => {
    const cut = jfkWav().subarray(0, 40_000);
    const { status, error } = await post(stack, "/audio/transcriptions", audioForm(cut, model));
    assert.equal(status, 400);
    assert.equal(error?.param, "file");
    assert.equal(error?.code, "truncated_audio");
    assert.match(error?.message ?? "", /cut short/);
  });

  test("an mp3 cut off inside its first frame decodes to nothing: 400 naming file", async () => {
    const { status, error } = await post(
      stack,
      "/audio/transcriptions",
      audioForm(jfkMp3().subarray(0, 500), model, "jfk.mp3"),
    );
    assert.equal(status, 400);
    assert.equal(error?.param, "file");
  });

  test("a file over CORRAL_MAX_AUDIO_BYTES is a 413 naming the limit", async () => {
    // jfk.wav is 352,078 bytes; the limit here is 200 KiB.
    const { status, error } = await post(stack, "/audio/transcriptions", audioForm(jfkWav(), model));
    assert.equal(status, 413);
    assert.equal(error?.param, "file");
    assert.equal(error?.code, "file_too_large");
    assert.match(error?.message ?? "", /CORRAL_MAX_AUDIO_BYTES/);
    // Declared within the multipart allowance, found over the limit while reading: the same 413.
    const read = await post(stack, "/audio/transcriptions", audioForm(jfkWav().subarray(0, 240_000), model));
    assert.equal(read.status, 413);
    assert.equal(read.error?.code, "file_too_large");
    assert.match(read.error?.message ?? "", /larger than the limit of 204800 bytes \(CORRAL_MAX_AUDIO_BYTES\)/);
  });

  test("audio longer than CORRAL_MAX_AUDIO_SECONDS once decoded is a 400 naming the limit", async () => {
    // jfk.mp3 is 76 KB (under the byte limit) and 11.0 s (over the 10 s limit).
    const { status, error } = await post(stack, "/audio/transcriptions", audioForm(jfkMp3(), model, "jfk.mp3"));
    assert.equal(status, 400);
    assert.equal(error?.code, "audio_too_long");
    assert.equal(error?.param, "file");
    assert.match(error?.message ?? "", /11\.0 s.*CORRAL_MAX_AUDIO_SECONDS/);
  });

  test("an unknown model is a 404 naming model; an LLM on the audio routes a 400 naming model", async () => {
    const unknown = await post(stack, "/audio/transcriptions", audioForm(jfkMp3(), { model: "whisper-9" }, "a.mp3"));
    assert.equal(unknown.status, 404);
    assert.equal(unknown.error?.param, "model");
    const llm = await post(stack, "/audio/translations", audioForm(jfkMp3(), { model: STORIES }, "a.mp3"));
    assert.equal(llm.status, 400);
    assert.equal(llm.error?.param, "model");
    assert.equal(llm.error?.code, "model_not_supported");
  });

  test("a Whisper model on the chat and completion routes is a 400 naming model", async () => {
    await assert.rejects(
      client.chat.completions.create({ model: WHISPER_TEST_MODEL, messages: [{ role: "user", content: "hi" }] }),
      (error: unknown) => error instanceof OpenAI.BadRequestError && error.param === "model",
    );
    await assert.rejects(
      client.completions.create({ model: WHISPER_TEST_MODEL, prompt: "hi" }),
      (error: unknown) => error instanceof OpenAI.BadRequestError && error.param === "model",
    );
  });

  test("bad fields are 400s naming the field", async () => {
    const cases: [Record<string, string | string[]>, string][] = [
      [{ response_format: "docx" }, "response_format"],
      [{ temperature: "hot" }, "temperature"],
      [{ temperature: "1.5" }, "temperature"],
      [{ language: "klingon" }, "language"],
      [{ language: "xx" }, "language"],
      [{ "timestamp_granularities[]": "word" }, "timestamp_granularities"],
      [{ response_format: "verbose_json", "timestamp_granularities[]": "character" }, "timestamp_granularities.0"],
      [{ stream: "true", response_format: "srt" }, "stream"],
      [{ stream: "maybe" }, "stream"],
      [{ prompt: "x".repeat(5000) }, "prompt"],
      [{ prompt: "x".repeat(20_000) }, "prompt"],
      [{ model: [WHISPER_TEST_MODEL, STORIES] }, "model"],
    ];
    for (const [fields, param] of cases) {
      const { status, error } = await post(
        stack,
        "/audio/transcriptions",
        audioForm(jfkMp3(), { ...model, ...fields }, "a.mp3"),
      );
      assert.equal(status, 400, `${JSON.stringify(fields)}: ${status}`);
      assert.equal(error?.param, param, JSON.stringify(fields));
    }
    const noModel = await post(stack, "/audio/transcriptions", audioForm(jfkMp3(), {}, "a.mp3"));
    assert.equal(noModel.status, 400);
    assert.equal(noModel.error?.param, "model");
  });

  test("a request without a file part is a 400 naming file; a JSON body a 415", async () => {
    const noFile = await post(stack, "/audio/transcriptions", audioForm(null, model));
    assert.equal(noFile.status, 400);
    assert.equal(noFile.error?.param, "file");
    const json = await post(stack, "/audio/transcriptions", JSON.stringify({ model: WHISPER_TEST_MODEL }));
    assert.equal(json.status, 415);
  });
});

describe("/v1/audio jobs: stored audio, payload, cancel and audio-second quotas (no worker)", () => {
  let stack: OpenAIStack;

  before(async () => {
    stack = await startStack({
      worker: false,
      whisper: true,
      env: { CORRAL_TENANT_AUDIO_SECONDS_PER_DAY: "lab:30", CORRAL_AUDIO_TTL: "2h" },
    });
  });
  after(async () => {
    await stack?.close();
  });

  test("a transcription is a queued job whose upload waits in Redis as sent, with its payload and fair cost", async () => {
    const { id, abort, request } = await queueTranscription(stack);
    const record = await stack.job(id);
    assert.equal(record.status, "queued");
    assert.equal(record.model, WHISPER_TEST_MODEL);
    assert.equal(record.source, "openai");

    const stored = await stack.redis.getBuffer(stack.keys.audio(id));
    assert.ok(stored?.equals(jfkMp3()), "the upload is stored byte for byte");
    const ttl = await stack.redis.pttl(stack.keys.audio(id));
    assert.ok(ttl > 3_600_000 && ttl <= 7_200_000, `TTL ${ttl} ms is CORRAL_AUDIO_TTL (2h)`);

    const queue = new Queue(laneName(WHISPER_TEST_MODEL), { connection: stack.redis, prefix: stack.keys.prefix });
    try {
      const payload = JobPayload.parse((await queue.getJob(id))?.data);
      assert.equal(payload.kind, "transcription");
      assert.equal(payload.max_tokens, 1);
      assert.equal(payload.language, "en");
      assert.equal(payload.prompt, "JFK speaking.");
      assert.equal(payload.file, `whisper/${WHISPER_TEST_MODEL}.bin`);
      assert.deepEqual(payload.audio, {
        key: stack.keys.audio(id),
        bytes: jfkMp3().length,
        seconds: JFK_SECONDS,
        filename: "jfk.mp3",
      });
      assert.equal(payload.fair_cost, JFK_SECONDS * AUDIO_TOKENS_PER_SECOND);
    } finally {
      await queue.close();
    }

    // The client leaves: the queued job is cancelled and its audio deleted.
    abort.abort();
    await request;
    const cancelled = await stack.waitForJob(id);
    assert.equal(cancelled.status, "cancelled");
    assert.equal(await stack.redis.exists(stack.keys.audio(id)), 0);
  });

  test("audio seconds count against the tenant's day at admission: /v1/quota shows them, past the budget is a 429", async () => {
    const quota = async (key = API_KEY) =>
      (await (await fetch(`${stack.baseURL}/quota`, { headers: { authorization: `Bearer ${key}` } })).json()) as {
        daily_audio_seconds: { limit: number | null; used: number; day: string };
      };
    const start = (await quota()).daily_audio_seconds;
    assert.equal(start.limit, 30);
    // The first test's 11 s count (a job cancelled after it was queued still counts).
    assert.equal(start.used, JFK_SECONDS);

    const second = await queueTranscription(stack);
    assert.equal((await quota()).daily_audio_seconds.used, 2 * JFK_SECONDS);

    // 22 s used + 11 s > 30 s: refused, nothing stored or counted.
    const refused = await post(stack, "/audio/transcriptions", audioForm(jfkMp3(), model, "jfk.mp3"));
    assert.equal(refused.status, 429);
    assert.equal(refused.error?.code, "audio_budget_exceeded");
    assert.equal(refused.error?.type, "insufficient_quota");
    assert.match(refused.error?.message ?? "", /CORRAL_TENANT_AUDIO_SECONDS_PER_DAY/);
    assert.equal((await quota()).daily_audio_seconds.used, 2 * JFK_SECONDS);
    const keys = await stack.redis.keys(`${stack.keys.prefix}:audio:*`);
    assert.deepEqual(keys, [stack.keys.audio(second.id)], "only the queued job's audio is stored");

    // Another tenant has no budget, and its own count.
    const other = (await quota(OTHER_KEY)).daily_audio_seconds;
    assert.equal(other.limit, null);
    assert.equal(other.used, 0);

    second.abort.abort();
    await second.request;
    assert.equal((await stack.waitForJob(second.id)).status, "cancelled");
  });

  test("the scheduler's metrics count audio seconds by tenant", async () => {
    const text = await (await fetch(`${stack.url}/metrics`)).text();
    assert.match(
      text,
      new RegExp(
        `corral_audio_seconds_submitted_total\\{model="${WHISPER_TEST_MODEL.replace(/\./g, "\\.")}",tenant="lab"\\} 22`,
      ),
    );
    assert.match(text, /corral_tenant_daily_audio_seconds\{tenant="lab"\} 22/);
    assert.match(text, /corral_tenant_audio_budget_seconds\{tenant="lab"\} 30/);
  });
});

describe("/v1/audio: a transcription refused after its upload was stored (queue full) leaves nothing behind", () => {
  let stack: OpenAIStack;

  before(async () => {
    stack = await startStack({
      worker: false,
      whisper: true,
      env: { CORRAL_MAX_QUEUED_PER_TENANT: "1", CORRAL_TENANT_AUDIO_SECONDS_PER_DAY: "lab:100" },
    });
  });
  after(async () => {
    await stack?.close();
  });

  test("the 429 queue_full deletes its audio and gives its seconds back", async () => {
    const first = await queueTranscription(stack);
    const refused = await post(stack, "/audio/transcriptions", audioForm(jfkMp3(), model, "jfk.mp3"));
    assert.equal(refused.status, 429);
    assert.equal(refused.error?.code, "queue_full");
    assert.deepEqual(await stack.redis.keys(`${stack.keys.prefix}:audio:*`), [stack.keys.audio(first.id)]);
    const quota = (await (
      await fetch(`${stack.baseURL}/quota`, { headers: { authorization: `Bearer ${API_KEY}` } })
    ).json()) as { daily_audio_seconds: { used: number } };
    assert.equal(quota.daily_audio_seconds.used, JFK_SECONDS, "only the queued file counts");
    first.abort.abort();
    await first.request;
    assert.equal((await stack.waitForJob(first.id)).status, "cancelled");
  });
});
