import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { JobResult } from "@corral/shared";
import { repoRootDir } from "../../../../../test/support/models.js";
import { parseAudioRequest } from "./audio-request.js";
import { declaredSeconds, measureAudio } from "./measure-audio.js";
import { formatTranscript, timestamp, toSrt, toVtt, verboseJson } from "./transcript-formats.js";

/** A finished job's result as a worker writes it (two segments, words on the second). */
const result = JobResult.parse({
  text: " And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.",
  finish_reason: "stop",
  usage: { prompt_tokens: 0, completion_tokens: 0, audio_seconds: 11 },
  timings: { queue_ms: 1, load_ms: 2, ttft_ms: null, generation_ms: 3 },
  transcription: {
    language: "en",
    duration: 11,
    segments: [
      { id: 0, start: 0, end: 7.6, text: " And so my fellow Americans, ask not what your country can do for you," },
      {
        id: 1,
        start: 7.6,
        end: 3725.0625,
        text: " ask what you can do for your country.",
        words: [
          { word: "ask", start: 7.6, end: 8 },
          { word: "what", start: 8, end: 8.3 },
        ],
      },
    ],
  },
});
const transcript = { task: "transcribe" as const, text: result.text, transcription: result.transcription! };

const fields = (entries: Record<string, string | string[]>) =>
  new Map(Object.entries(entries).map(([k, v]) => [k, Array.isArray(v) ? v : [v]]));

describe("transcript formats", () => {
  test("timestamps: HH:MM:SS,mmm for SubRip and HH:MM:SS.mmm for WebVTT, rounded to the millisecond", () => {
    assert.equal(timestamp(0, ","), "00:00:00,000");
    assert.equal(timestamp(7.6, "."), "00:00:07.600");
    assert.equal(timestamp(3725.0625, ","), "01:02:05,063");
  });

  test("srt: numbered cues from 1, each followed by a blank line", () => {
    assert.equal(
      toSrt(transcript.transcription.segments),
      "1\n00:00:00,000 --> 00:00:07,600\nAnd so my fellow Americans, ask not what your country can do for you,\n\n" +
        "2\n00:00:07,600 --> 01:02:05,063\nask what you can do for your country.\n\n",
    );
  });

  test("vtt: the WEBVTT header, then one cue per segment", () => {
    assert.equal(
      toVtt(transcript.transcription.segments),
      "WEBVTT\n\n00:00:00.000 --> 00:00:07.600\nAnd so my fellow Americans, ask not what your country can do for you,\n\n" +
        "00:00:07.600 --> 01:02:05.063\nask what you can do for your country.\n\n",
    );
  });

  test("json is {text, usage}; text is the text and a newline", () => {
    const json = formatTranscript(transcript, "json");
    assert.match(json.contentType, /^application\/json/);
    assert.deepEqual(JSON.parse(json.body), { text: result.text, usage: { type: "duration", seconds: 11 } });
    assert.deepEqual(formatTranscript(transcript, "text"), {
      contentType: "text/plain; charset=utf-8",
      body: `${result.text}\n`,
    });
  });

  test("verbose_json: task, language's English name, duration, segments; words only when asked for", () => {
    const verbose = verboseJson(transcript, new Set(["segment"]));
    assert.equal(verbose.task, "transcribe");
    assert.equal(verbose.language, "english");
    assert.equal(verbose.duration, 11);
    assert.equal(verbose.segments?.length, 2);
    assert.deepEqual(Object.keys(verbose.segments![0]!).sort(), [
      "avg_logprob",
      "compression_ratio",
      "end",
      "id",
      "no_speech_prob",
      "seek",
      "start",
      "temperature",
      "text",
      "tokens",
    ]);
    assert.equal("words" in verbose, false);
    const words = verboseJson(transcript, new Set(["word"]));
    assert.equal("segments" in words, false);
    assert.deepEqual(words.words, [
      { word: "ask", start: 7.6, end: 8 },
      { word: "what", start: 8, end: 8.3 },
    ]);
  });
});

describe("audio request fields", () => {
  test("defaults: json, temperature 0, segment timestamps, no language, no stream", () => {
    const request = parseAudioRequest(fields({ model: "whisper-1" }));
    assert.deepEqual(request, {
      model: "whisper-1",
      language: null,
      prompt: null,
      temperature: 0,
      responseFormat: "json",
      granularities: new Set(["segment"]),
      stream: false,
    });
  });

  test("every field as the openai client sends it", () => {
    const request = parseAudioRequest(
      fields({
        model: "whisper-1",
        language: "DE",
        prompt: "Glossar: Kanzler.",
        temperature: "0.2",
        response_format: "verbose_json",
        "timestamp_granularities[]": ["word", "segment"],
        stream: "false",
        chunking_strategy: "auto",
      }),
    );
    assert.equal(request.language, "de");
    assert.equal(request.prompt, "Glossar: Kanzler.");
    assert.equal(request.temperature, 0.2);
    assert.deepEqual([...request.granularities].sort(), ["segment", "word"]);
  });
});

describe("measuring audio", () => {
  const dir = process.env.CORRAL_TEST_AUDIO_DIR ?? resolve(repoRootDir, "../shared/fixtures/audio");
  const wav = readFileSync(join(dir, "jfk.wav"));
  const mp3 = readFileSync(join(dir, "jfk.mp3"));

  test("jfk.wav and jfk.mp3 decode to 11.0 s; the WAV header declares 11.0 s, the mp3 nothing", async () => {
    assert.equal(await measureAudio(wav, "jfk.wav", 3600), 11);
    assert.equal(await measureAudio(mp3, "jfk.mp3", 3600), 11);
    assert.equal(declaredSeconds(wav), 11);
    assert.equal(declaredSeconds(mp3), null);
  });

  test("a WAV whose data size is unknown (streamed, 0xFFFFFFFF) declares nothing", () => {
    const streamed = Buffer.from(wav);
    const at = streamed.indexOf("data", 12, "latin1");
    streamed.writeUInt32LE(0xffffffff, at + 4);
    assert.equal(declaredSeconds(streamed), null);
  });
});
