import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import OpenAI, { toFile } from "openai";
import { API_KEY, startStack, type OpenAIStack } from "./harness.js";
import {
  JFK_REFERENCE,
  JFK_SECONDS,
  WHISPER_TEST_MODEL,
  jfkMp3,
  jfkWav,
  trainedWhisperModel,
  wordErrorRate,
} from "./audio-fixtures.js";

// whisper.cpp's test models hold a vocabulary and no weights: they run the whole pipeline
// (decode, mel, encoder, decoder) and write no words, so these tests check shapes, the
// measured duration and the timing formats, never the text. The WER test needs a trained model.

const SRT_TIME = /^\d{2}:\d{2}:\d{2},\d{3} --> \d{2}:\d{2}:\d{2},\d{3}$/;
const VTT_TIME = /^\d{2}:\d{2}:\d{2}\.\d{3} --> \d{2}:\d{2}:\d{2}\.\d{3}$/;

/** Every line of an srt body that is a cue's time range has SubRip's format; cues are numbered from 1. */
function assertSrt(body: string): void {
  const blocks = body.split("\n\n").filter((block) => block.trim() !== "");
  blocks.forEach((block, i) => {
    const [number, times] = block.split("\n");
    assert.equal(number, String(i + 1));
    assert.match(times ?? "", SRT_TIME);
  });
}

/** Polls until the job's stored audio is gone: the worker deletes it just after the final record. */
async function audioGone(
  stack: { redis: { exists(key: string): Promise<number> }; keys: { audio(id: string): string } },
  id: string,
): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while ((await stack.redis.exists(stack.keys.audio(id))) !== 0) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

describe("/v1/audio through a real worker (whisper.cpp test model, openai client)", () => {
  let stack: OpenAIStack;
  let client: OpenAI;

  before(async () => {
    stack = await startStack({ whisper: true });
    client = stack.client();
  });
  after(async () => {
    await stack?.close();
  });

  const file = async (name: "jfk.wav" | "jfk.mp3" = "jfk.wav") =>
    toFile(name === "jfk.wav" ? jfkWav() : jfkMp3(), name);

  test("json: {text} with the duration as usage; the job record shows the transcription and its audio is gone", async () => {
    const response = await client.audio.transcriptions
      .create({ model: WHISPER_TEST_MODEL, file: await file(), language: "en" })
      .withResponse();
    const transcription = response.data as OpenAI.Audio.Transcription & { usage?: { type: string; seconds: number } };
    assert.equal(typeof transcription.text, "string");
    assert.deepEqual(transcription.usage, { type: "duration", seconds: JFK_SECONDS });
    const id = response.response.headers.get("x-corral-job-id");
    assert.ok(id, "the job id is in x-corral-job-id");

    const record = await stack.job(id);
    assert.equal(record.status, "succeeded");
    assert.equal(record.model, WHISPER_TEST_MODEL);
    assert.equal(record.result?.transcription?.duration, JFK_SECONDS);
    assert.equal(record.result?.usage.audio_seconds, JFK_SECONDS);
    assert.equal(record.result?.text, transcription.text);
    assert.ok(await audioGone(stack, id), "the worker deleted the audio");
  });

  test("verbose_json (mp3): task, language, duration 11.0, segments with times inside the audio, words when asked", async () => {
    const verbose = await client.audio.transcriptions.create({
      model: WHISPER_TEST_MODEL,
      file: await file("jfk.mp3"),
      response_format: "verbose_json",
      timestamp_granularities: ["segment", "word"],
      language: "en",
    });
    assert.equal(verbose.language, "english");
    assert.equal(verbose.duration, JFK_SECONDS);
    assert.equal(typeof verbose.text, "string");
    assert.ok(Array.isArray(verbose.segments));
    for (const segment of verbose.segments ?? []) {
      assert.ok(segment.start >= 0 && segment.end >= segment.start && segment.end <= JFK_SECONDS + 0.5);
      assert.equal(typeof segment.text, "string");
    }
    assert.ok(Array.isArray(verbose.words));
    assert.equal((verbose as unknown as { task: string }).task, "transcribe");
  });

  test("text, srt and vtt come back as plain text in their formats", async () => {
    const text = await client.audio.transcriptions.create({
      model: WHISPER_TEST_MODEL,
      file: await file(),
      response_format: "text",
    });
    assert.equal(typeof text, "string");
    assert.ok(text.endsWith("\n"));

    const srt = await client.audio.transcriptions.create({
      model: WHISPER_TEST_MODEL,
      file: await file(),
      response_format: "srt",
    });
    assert.equal(typeof srt, "string");
    assertSrt(srt);

    const vtt = await client.audio.transcriptions.create({
      model: WHISPER_TEST_MODEL,
      file: await file(),
      response_format: "vtt",
    });
    assert.ok(vtt.startsWith("WEBVTT\n\n"), JSON.stringify(vtt.slice(0, 40)));
    for (const line of vtt.split("\n").filter((l) => l.includes("-->"))) assert.match(line, VTT_TIME);
  });

  test("stream: transcript.text.delta events (one per segment) and a transcript.text.done with the whole text", async () => {
    const stream = await client.audio.transcriptions.create({
      model: WHISPER_TEST_MODEL,
      file: await file(),
      stream: true,
    });
    const events: OpenAI.Audio.TranscriptionStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    const done = events.at(-1);
    assert.equal(done?.type, "transcript.text.done");
    const deltas = events.slice(0, -1);
    assert.ok(deltas.every((e) => e.type === "transcript.text.delta"));
    const text = deltas.map((e) => (e.type === "transcript.text.delta" ? e.delta : "")).join("");
    assert.equal(done.type === "transcript.text.done" ? done.text : null, text);
    assert.deepEqual((done as unknown as { usage: unknown }).usage, { type: "duration", seconds: JFK_SECONDS });
  });

  test("translations: the openai client's audio.translations.create, json and verbose_json (task translate)", async () => {
    const translation = await client.audio.translations.create({ model: WHISPER_TEST_MODEL, file: await file() });
    assert.equal(typeof translation.text, "string");
    const verbose = await client.audio.translations.create({
      model: WHISPER_TEST_MODEL,
      file: await file("jfk.mp3"),
      response_format: "verbose_json",
    });
    const body = verbose as unknown as { task: string; duration: number };
    assert.equal(body.task, "translate");
    assert.equal(body.duration, JFK_SECONDS);
  });

  test("a client that leaves mid-transcription cancels the running job, and its audio is deleted", async () => {
    // jfk.wav's samples six times over (66 s): long enough to be running when the client leaves.
    const wav = jfkWav();
    const dataAt = wav.indexOf("data", 12, "latin1");
    const pcm = wav.subarray(dataAt + 8);
    const long = Buffer.concat([wav.subarray(0, dataAt + 8), ...Array.from({ length: 6 }, () => pcm)]);
    long.writeUInt32LE(long.length - 8, 4);
    long.writeUInt32LE(pcm.length * 6, dataAt + 4);

    const abort = new AbortController();
    const form = new FormData();
    form.append("file", new Blob([new Uint8Array(long)]), "long.wav");
    form.append("model", WHISPER_TEST_MODEL);
    const request = fetch(`${stack.baseURL}/audio/transcriptions`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}` },
      body: form,
      signal: abort.signal,
    }).catch((error: unknown) => error);
    let id: string | undefined;
    while (id === undefined) {
      const page = (await (
        await fetch(`${stack.baseURL}/jobs?status=running`, { headers: { authorization: `Bearer ${API_KEY}` } })
      ).json()) as { data: { id: string }[] };
      id = page.data[0]?.id;
      if (id === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    abort.abort();
    await request;
    const record = await stack.waitForJob(id);
    assert.equal(record.status, "cancelled");
    assert.ok(await audioGone(stack, id), "the audio is deleted");
  });

  test("GET /v1/quota counts the tenant's audio seconds", async () => {
    const quota = (await (
      await fetch(`${stack.baseURL}/quota`, { headers: { authorization: `Bearer ${API_KEY}` } })
    ).json()) as { daily_audio_seconds: { used: number; limit: number | null } };
    // Eight files of 11 s and one of 66 s so far in this suite.
    assert.equal(quota.daily_audio_seconds.used, 14 * JFK_SECONDS);
    assert.equal(quota.daily_audio_seconds.limit, null);
  });
});

describe("word error rate on JFK with a trained Whisper model", () => {
  const trained = trainedWhisperModel();
  test(
    "a trained model transcribes jfk.wav within 15% word error rate",
    {
      skip: trained
        ? false
        : "no trained Whisper model in the shared models' whisper/ folder (only whisper.cpp's for-tests-* models, which write no words); add e.g. ggml-tiny.en.bin to run it",
    },
    async () => {
      const stack = await startStack({ whisper: true });
      try {
        const text = await stack.client().audio.transcriptions.create({
          model: trained!.id,
          file: await toFile(jfkWav(), "jfk.wav"),
          language: "en",
          response_format: "text",
        });
        const wer = wordErrorRate(JFK_REFERENCE, text);
        assert.ok(wer <= 0.15, `WER ${wer.toFixed(3)} for ${JSON.stringify(text)}`);
      } finally {
        await stack.close();
      }
    },
  );
});
