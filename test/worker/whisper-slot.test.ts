import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { WorkerState, type CatalogModel, type JobRecord } from "@corral/shared";
import { startWorker, type RunningWorker } from "@corral/worker";
import { readFileSync } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import { processExists, waitForExit } from "../support/processes.js";
import { STORIES, createHarness, readTokenStream, type Harness } from "./support/harness.js";
import {
  JFK_REFERENCE,
  JFK_SECONDS,
  WHISPER_TEST_FILE,
  WHISPER_TEST_MULTI_FILE,
  audioFixture,
  publishWhisperModel,
  submitAudio,
  trainedWhisperModel,
  whisperModelsDir,
  wordErrorRate,
} from "./support/whisper.js";

// Whisper jobs through a real worker: the supervisor forks a CPU slot process, which claims
// from Redis and runs whisper.cpp (@napi-rs/whisper) on whisper.cpp's weightless test models.
// Those transcribe nothing: the tests check what ran (duration, segments, language, stream,
// usage, the audio key), never the text. A trained model, when one is in the shared models
// folder, is checked against JFK's words.

async function until<T>(what: string, read: () => Promise<T> | T, ok: (value: T) => boolean, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const slotState = async (h: Harness, id: string): Promise<WorkerState | null> => {
  const raw = await h.redis.get(h.keys.worker(id));
  return raw === null ? null : WorkerState.parse(JSON.parse(raw));
};

/** Checks a succeeded transcription of jfk (11 s) and returns its record. */
function assertTranscribed(done: JobRecord, language = "en"): void {
  assert.equal(done.status, "succeeded", JSON.stringify(done.error));
  const result = done.result!;
  assert.equal(typeof result.text, "string");
  assert.equal(result.finish_reason, "stop");
  assert.deepEqual(result.usage, { prompt_tokens: 0, completion_tokens: 0, audio_seconds: JFK_SECONDS });
  assert.ok(result.transcription, "the result carries the transcription");
  assert.equal(result.transcription.duration, JFK_SECONDS);
  assert.equal(result.transcription.language, language);
  assert.ok(Array.isArray(result.transcription.segments));
  assert.ok(result.timings.generation_ms > 0);
}

describe("a worker slot running Whisper jobs", () => {
  let h: Harness;
  let worker: RunningWorker;
  let english: CatalogModel;
  let multilingual: CatalogModel;

  before(async () => {
    h = await createHarness({ label: "whisper" });
    english = await publishWhisperModel(h, "whisper-test-en", `${whisperModelsDir()}/${WHISPER_TEST_FILE}`);
    multilingual = await publishWhisperModel(h, "whisper-test", `${whisperModelsDir()}/${WHISPER_TEST_MULTI_FILE}`);
    worker = await startWorker(h.config({ CORRAL_CPU: "true", CORRAL_CPU_SLOTS: "1" }), {
      logger: h.logger,
      restartInitialMs: 200,
      restartMaxMs: 400,
    });
  });
  after(async () => {
    await worker?.close();
    await h?.close();
  });

  test("transcribes a wav: result, usage in audio seconds, one stream entry per segment and the end entry; the audio key goes", async () => {
    const record = await submitAudio(h, { model: english, file: audioFixture("jfk.wav") });
    const done = await h.waitFor(record.id);
    assertTranscribed(done);
    const stream = await until(
      "the stream's end entry",
      () => readTokenStream(h.redis, h.keys, record.id),
      (s) => s.end !== null,
    );
    assert.equal(stream.end?.status, "succeeded");
    assert.equal(stream.end?.finish_reason, "stop");
    const entries = await h.redis.xlen(h.keys.tokens(record.id));
    assert.equal(entries, done.result!.transcription!.segments.length + 1, "a text entry per segment, then the end");
    assert.equal(stream.text.trim(), done.result!.text);
    // The worker deletes it after the final record (which the wait saw) and BullMQ's completion.
    await until(
      "the audio is deleted once the job succeeded",
      () => h.redis.exists(h.keys.audio(record.id)),
      (n) => n === 0,
      10_000,
    );
    await h.jobIn(english.id, record.id, ["completed"]);

    const metrics = await (await fetch(worker.metricsUrl)).text();
    const seconds = /^corral_audio_seconds_total\{[^}]*model="whisper-test-en"[^}]*\} (\S+)$/m.exec(metrics);
    assert.ok(seconds && Number(seconds[1]) >= JFK_SECONDS, "counts the audio seconds");
    assert.match(metrics, /^corral_audio_real_time_factor_count\{[^}]*model="whisper-test-en"[^}]*\} [1-9]/m);
  });

  test("decodes an mp3 of the same clip to the same 11 s", async () => {
    const record = await submitAudio(h, { model: english, file: audioFixture("jfk.mp3"), stream: false });
    assertTranscribed(await h.waitFor(record.id));
    assert.equal(await h.redis.exists(h.keys.tokens(record.id)), 0, "no stream when the job asked for none");
  });

  test("translates with a multilingual model, detecting the language", async () => {
    const record = await submitAudio(h, { model: multilingual, file: audioFixture("jfk.wav"), kind: "translation" });
    const done = await h.waitFor(record.id);
    assert.equal(done.status, "succeeded", JSON.stringify(done.error));
    assert.equal(done.result!.transcription!.duration, JFK_SECONDS);
    // The weightless model detects some language; a trained one would say "en".
    assert.match(done.result!.transcription!.language, /^[a-z]{2,3}$/);
  });

  test("an upload whose key expired while the job waited fails at once with audio_expired, not retried", async () => {
    const record = await submitAudio(h, { model: english, file: audioFixture("jfk.wav"), withoutAudio: true });
    const done = await h.waitFor(record.id);
    assert.equal(done.status, "failed");
    assert.equal(done.error?.code, "audio_expired");
    assert.match(done.error!.message, /audio expired/);
    assert.equal(done.attempts, 1);
  });

  test("a cancel mid-transcription stops whisper.cpp (its host process goes), ends the job cancelled, and the slot runs the next one", async () => {
    // A first job loads the model: its host is then there to watch.
    assertTranscribed(await h.waitFor((await submitAudio(h, { model: english, file: audioFixture("jfk.wav") })).id));
    const [host] = await whisperHostsOf(worker);
    assert.ok(host !== undefined, "the slot runs a whisper host");
    const cpuBefore = cpuTicks(host);

    const record = await submitAudio(h, { model: english, file: audioFixture("jfk.wav") });
    await h.waitFor(record.id, (r) => r.status === "running");
    // Transcribing: the host has used 0.3 s of CPU on this job.
    await until(
      "the host to work on the job",
      () => cpuTicks(host),
      (ticks) => ticks >= cpuBefore + 30,
    );
    await h.redis.publish(h.keys.cancelChannel, record.id);
    const done = await h.waitFor(record.id);
    assert.equal(done.status, "cancelled");
    assert.equal(done.result?.finish_reason, "cancelled");
    assert.ok(await waitForExit(host, 10_000), "the cancel killed the whisper host");
    const stream = await until(
      "the end entry",
      () => readTokenStream(h.redis, h.keys, record.id),
      (s) => s.end !== null,
    );
    assert.equal(stream.end?.status, "cancelled");
    // The worker deletes it after the final record (which the wait saw) and BullMQ's completion.
    await until(
      "the audio is deleted once the job is cancelled",
      () => h.redis.exists(h.keys.audio(record.id)),
      (n) => n === 0,
      10_000,
    );

    const next = await submitAudio(h, { model: english, file: audioFixture("jfk.wav") });
    assertTranscribed(await h.waitFor(next.id));
  });

  test("holds an LLM and a Whisper model at once and runs both kinds of job", async () => {
    const text = await h.submit({ model: STORIES, prompt: "Once upon a time", max_tokens: 16 });
    const audio = await submitAudio(h, { model: english, file: audioFixture("jfk.wav") });
    const [textDone, audioDone] = await Promise.all([h.waitFor(text.id), h.waitFor(audio.id)]);
    assert.equal(textDone.status, "succeeded");
    assert.ok(textDone.result!.usage.completion_tokens > 0);
    assertTranscribed(audioDone);
    const slotId = worker.slots[0]!.id;
    // A later heartbeat (the first may still list a job that was finishing).
    await until(
      "a heartbeat listing both models loaded, and no job",
      () => slotState(h, slotId),
      (s) =>
        s !== null &&
        s.active_jobs.length === 0 &&
        [STORIES, english.id].every((m) => s.loaded_models.some((l) => l.model === m)),
    );
  });

  test("with a trained Whisper model, transcribes JFK within a word error rate of 0.15", async (t) => {
    const trained = trainedWhisperModel();
    if (trained === null) {
      t.skip(
        `no trained Whisper model in ${whisperModelsDir()} (only whisper.cpp's weightless for-tests-* models); put e.g. ggml-tiny.en.bin there to run this check`,
      );
      return;
    }
    const model = await publishWhisperModel(h, "whisper-trained", trained);
    const record = await submitAudio(h, { model, file: audioFixture("jfk.wav"), language: "en" });
    const done = await h.waitFor(record.id, undefined, 300_000);
    assertTranscribed(done);
    const wer = wordErrorRate(JFK_REFERENCE, done.result!.text);
    assert.ok(wer <= 0.15, `word error rate ${wer.toFixed(3)} for ${JSON.stringify(done.result!.text)}`);
  });
});

describe("a worker slot SIGKILLed mid-transcription", () => {
  let h: Harness;
  let worker: RunningWorker;
  let english: CatalogModel;

  before(async () => {
    h = await createHarness({ label: "whisper-kill" });
    english = await publishWhisperModel(h, "whisper-test-en", `${whisperModelsDir()}/${WHISPER_TEST_FILE}`);
    worker = await startWorker(h.config({ CORRAL_CPU: "true", CORRAL_CPU_SLOTS: "1" }), {
      logger: h.logger,
      restartInitialMs: 200,
      restartMaxMs: 400,
    });
  });
  after(async () => {
    await worker?.close();
    await h?.close();
  });

  test("loses nothing: the job runs again on the restarted slot from the audio still in Redis, and succeeds once", async () => {
    assertTranscribed(await h.waitFor((await submitAudio(h, { model: english, file: audioFixture("jfk.wav") })).id));
    const [host] = await whisperHostsOf(worker);
    assert.ok(host !== undefined, "the slot runs a whisper host");
    const cpuBefore = cpuTicks(host);

    const record = await submitAudio(h, { model: english, file: audioFixture("jfk.wav") });
    await h.waitFor(record.id, (r) => r.status === "running");
    await until(
      "the host to work on the job",
      () => cpuTicks(host),
      (ticks) => ticks >= cpuBefore + 30,
    );
    const pid = worker.slots[0]!.pid!;
    const killedAt = Date.now();
    process.kill(pid, "SIGKILL");
    assert.equal(await h.redis.exists(h.keys.audio(record.id)), 1, "the audio stays for the rerun");

    const done = await h.waitFor(record.id, (r) => r.status === "succeeded" || r.status === "failed", 120_000);
    assertTranscribed(done);
    assert.ok(done.started_at! > killedAt, "it ran again after the kill");
    assert.equal(done.attempts, 2);
    // The worker deletes it after the final record (which the wait saw) and BullMQ's completion.
    await until(
      "the audio is deleted once the rerun succeeded",
      () => h.redis.exists(h.keys.audio(record.id)),
      (n) => n === 0,
      10_000,
    );
    const stream = await readTokenStream(h.redis, h.keys, record.id);
    assert.equal(stream.end?.status, "succeeded");
    // The dead slot's host finishes the call it was in, sees its slot gone, and exits.
    assert.ok(await waitForExit(host, 60_000), "the orphaned whisper host exits");
  });
});

/** CPU time (user + system) a process used, in clock ticks (Linux /proc; 0 once it is gone). */
function cpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/** The pids of the whisper hosts under the worker's slot processes (Linux /proc). */
async function whisperHostsOf(worker: RunningWorker): Promise<number[]> {
  const slots = new Set(worker.slots.map((s) => s.pid).filter((pid): pid is number => pid !== null));
  const hosts: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const cmdline = await readFile(`/proc/${name}/cmdline`, "utf8");
      if (slots.has(ppid) && cmdline.includes("whisper-host")) hosts.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return hosts.filter(processExists);
}
