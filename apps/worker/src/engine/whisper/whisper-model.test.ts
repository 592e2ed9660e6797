import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { JobPayload } from "@corral/shared";
import { pino } from "pino";
import {
  JFK_SECONDS,
  WHISPER_TEST_FILE,
  WHISPER_TEST_MULTI_FILE,
  audioFixture,
  whisperModelsDir,
} from "../../../../../test/worker/support/whisper.js";
import { STORIES, sharedModelsDir } from "../../../../../test/support/models.js";
import { InvalidJobError, ModelFileError, isUnrecoverable } from "../errors.js";
import { WhisperEngine } from "./whisper-engine.js";
import type { WhisperModel } from "./whisper-model.js";

const logger = pino({ level: "silent" });

const job = (overrides: Partial<JobPayload> = {}): JobPayload => ({
  id: "job-audio-1",
  tenant: "t1",
  model: "whisper-test",
  file: WHISPER_TEST_FILE,
  source: "openai",
  kind: "transcription",
  audio: { key: "unused", bytes: 0, seconds: JFK_SECONDS, filename: "jfk.wav" },
  max_tokens: 1,
  temperature: 0,
  stream: true,
  requirement_bytes: 0,
  created_at: Date.now(),
  ...overrides,
});

/**
 * whisper.cpp's test models hold no weights: they run the whole pipeline (load, decode,
 * mel, encoder, decoder) and transcribe nothing, so these tests check what ran, never the
 * text.
 */
describe("WhisperModel on whisper.cpp's test model (real whisper.cpp, CPU)", () => {
  let engine: WhisperEngine;
  let model: WhisperModel;
  let wav: Buffer;

  before(async () => {
    engine = await WhisperEngine.create({ threads: 1, modelsDir: whisperModelsDir(), logger });
    model = await engine.load({ modelId: "whisper-test", path: WHISPER_TEST_FILE });
    wav = await readFile(audioFixture("jfk.wav"));
  });
  after(async () => {
    await engine.close();
  });

  test("transcribes a wav: a string, 11 s of audio, the language, a segments array and audio usage", async () => {
    const texts: string[] = [];
    const result = await model.run(job(), { audio: wav, onText: (text) => texts.push(text) });
    assert.equal(typeof result.text, "string");
    assert.equal(result.finish_reason, "stop");
    assert.deepEqual(result.usage, { prompt_tokens: 0, completion_tokens: 0, audio_seconds: JFK_SECONDS });
    assert.ok(result.transcription);
    assert.equal(result.transcription.duration, JFK_SECONDS);
    assert.equal(result.transcription.language, "en");
    assert.ok(Array.isArray(result.transcription.segments));
    assert.equal(texts.length, result.transcription.segments.length, "one text per segment");
    for (const segment of result.transcription.segments) assert.ok(segment.end >= segment.start);
    assert.ok(result.generation_ms > 0);
  });

  test("decodes an mp3 of the same clip to the same 11 s", async () => {
    const mp3 = await readFile(audioFixture("jfk.mp3"));
    const result = await model.run(job({ audio: { key: "unused", bytes: 0, seconds: 11, filename: "jfk.mp3" } }), {
      audio: mp3,
    });
    assert.equal(result.transcription?.duration, JFK_SECONDS);
    assert.equal(result.usage.audio_seconds, JFK_SECONDS);
  });

  test("a cancel mid-transcription ends the run at once and the next run works", async () => {
    const controller = new AbortController();
    const running = model.run(job(), { audio: wav, signal: controller.signal });
    // The run takes over a second on the test model; cancel while whisper.cpp is in full().
    await new Promise((r) => setTimeout(r, 300));
    controller.abort("cancelled");
    await assert.rejects(running, (reason) => reason === "cancelled");
    const next = await model.run(job(), { audio: wav });
    assert.equal(next.transcription?.duration, JFK_SECONDS);
  });

  test("runs queued jobs one after another, in order", async () => {
    const order: number[] = [];
    await Promise.all([1, 2].map((n) => model.run(job({ id: `job-${n}` }), { audio: wav }).then(() => order.push(n))));
    assert.deepEqual(order, [1, 2]);
  });

  test("a job cancelled while it waits for the one before it ends at once; the one before finishes", async () => {
    const first = model.run(job({ id: "job-first" }), { audio: wav });
    const controller = new AbortController();
    const second = model.run(job({ id: "job-second" }), { audio: wav, signal: controller.signal });
    controller.abort("cancelled");
    await assert.rejects(second, (reason) => reason === "cancelled");
    assert.equal((await first).transcription?.duration, JFK_SECONDS);
  });

  test("bytes that are not audio fail the job without retry (InvalidJobError)", async () => {
    await assert.rejects(
      model.run(job({ audio: { key: "unused", bytes: 0, seconds: 1, filename: "notes.txt" } }), {
        audio: Buffer.from("this is not audio at all, just some text"),
      }),
      (error) => error instanceof InvalidJobError && isUnrecoverable(error) && error.field === "file",
    );
  });

  test("refuses text jobs and jobs without audio", async () => {
    await assert.rejects(model.run(job({ kind: "completion" }), { audio: wav }), InvalidJobError);
    await assert.rejects(model.run(job(), {}), InvalidJobError);
  });
});

describe("WhisperModel on the multilingual test model", () => {
  let engine: WhisperEngine;

  before(async () => {
    engine = await WhisperEngine.create({ threads: 1, modelsDir: whisperModelsDir(), logger });
  });
  after(async () => {
    await engine.close();
  });

  test("translates with the language detected, and reports a language code", async () => {
    const model = await engine.load({ modelId: "whisper-multi", path: WHISPER_TEST_MULTI_FILE });
    const wav = await readFile(audioFixture("jfk.wav"));
    const result = await model.run(job({ kind: "translation" }), { audio: wav });
    assert.equal(result.transcription?.duration, JFK_SECONDS);
    // Weightless, the model detects some language: a code whisper.cpp knows.
    assert.match(result.transcription?.language ?? "", /^[a-z]{2,3}$/);
  });
});

describe("WhisperEngine model files", () => {
  test("a missing file, a GGUF and a path outside the models folder fail as ModelFileError", async () => {
    const engine = await WhisperEngine.create({ modelsDir: whisperModelsDir(), logger });
    try {
      await assert.rejects(engine.load({ modelId: "gone", path: "gone.bin" }), ModelFileError);
      await assert.rejects(engine.load({ modelId: "x", path: "../../etc/passwd" }), ModelFileError);
      const other = await WhisperEngine.create({ logger });
      await assert.rejects(
        other.load({ modelId: STORIES, path: join(sharedModelsDir(), `${STORIES}.gguf`) }),
        (error) => error instanceof ModelFileError && /ggml magic/.test(error.message),
      );
    } finally {
      await engine.close();
    }
  });
});
