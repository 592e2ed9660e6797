/**
 * 14. Transcription real-time factor (audio seconds per wall second) through Corral against
 * the binding called directly, on the same file with the same parameters: jfk.wav (11 s),
 * whisper.cpp at the bench's threads, language "en", greedy at temperature 0, decoding
 * included on both sides. Corral: the jobs queued in Redis as the scheduler queues them,
 * one CPU worker slot claiming them and running them in its whisper host process; wall time
 * from the first submit to the last final record. Direct: `decodeAudioAsync` and
 * `Whisper.full()` in this process, the same number of files back to back. The model is
 * CORRAL_BENCH_WHISPER_MODEL, else a trained ggml `.bin` in the models folder's `whisper/`,
 * else whisper.cpp's weightless test model (it runs the whole pipeline and outputs nothing).
 */
import { fork } from "node:child_process";
import { closeSync, openSync, readdirSync, statSync } from "node:fs";
import { mkdtemp, readFile, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { Whisper, WhisperFullParams, WhisperSamplingStrategy, decodeAudioAsync } from "@napi-rs/whisper";
import { Redis } from "ioredis";
import { JobRecords, RedisKeys, parseJobEvent, type CatalogModel, type JobRecord } from "@corral/shared";
import { AudioJobs } from "./lib/audio-jobs.js";
import { stopChild } from "./lib/corral-stack.js";
import { median, ratio, round, sleep } from "./lib/stats.js";
import { runAlone } from "./lib/run-alone.js";
import type { BenchOptions, BenchResult } from "./lib/types.js";

const TARGET = 0.95;
const AUDIO_SECONDS = 11;
const SAMPLE_RATE = 16_000;

export async function benchTranscriptionRtf(o: BenchOptions): Promise<BenchResult> {
  const modelPath = whisperModel(o);
  const audioPath = resolve(o.modelsDir, "../fixtures/audio/jfk.wav");
  const audio = await readFile(audioPath);
  const files = o.quick ? 1 : 6;
  const runs = o.runs;

  const direct = new DirectWhisper(modelPath, o.threads);
  const corral = await CorralWhisper.start(o, modelPath, o.threads);
  const directRtf: number[] = [];
  const corralRtf: number[] = [];
  /** Of each Corral run's wall time, the share its jobs spent in the engine (decode and whisper.cpp). */
  const engineShare: number[] = [];
  try {
    // Warm-up: the model loads on both sides, caches fill.
    await direct.run(audio, 1);
    await corral.run(audio, 1);
    for (let run = 0; run < runs; run++) {
      const sides = [
        async () => directRtf.push((files * AUDIO_SECONDS) / (await direct.run(audio, files))),
        async () => {
          const { wallSeconds, engineSeconds } = await corral.run(audio, files);
          corralRtf.push((files * AUDIO_SECONDS) / wallSeconds);
          engineShare.push(engineSeconds / wallSeconds);
        },
      ];
      // Alternating order, so drift through a pair does not always favour one side.
      if (run % 2 === 1) sides.reverse();
      for (const side of sides) await side();
      o.log(
        `  transcription run ${run + 1}/${runs}: direct ${directRtf.at(-1)!.toFixed(2)}×, corral ${corralRtf.at(-1)!.toFixed(2)}× real time`,
      );
    }
  } finally {
    await corral.close();
  }
  const c = median(corralRtf);
  const b = median(directRtf);
  const r = ratio(c, b);
  return {
    corral: round(c, 3),
    baseline: round(b, 3),
    ratio: r,
    unit: "audio s per wall s (real-time factor), jfk.wav",
    target: `ratio >= ${TARGET}`,
    met: r !== null && r >= TARGET,
    config: { model: basename(modelPath), files_per_run: files, audio_seconds: AUDIO_SECONDS, threads: o.threads },
    corral_runs: corralRtf.map((v) => round(v, 3)),
    direct_runs: directRtf.map((v) => round(v, 3)),
    // Each pair's ratio, and the median of them: the machine's other load moves both sides.
    pair_ratios: corralRtf.map((v, i) => ratio(v, directRtf[i])),
    median_pair_ratio: ratio(median(corralRtf.map((v, i) => v / directRtf[i]!)), 1),
    // What Corral adds around the engine, independent of the machine's speed: 1 = none.
    engine_share_of_wall: round(median(engineShare), 3),
  };
}

/** The Whisper model the benchmark runs: see the file's comment. */
function whisperModel(o: BenchOptions): string {
  const chosen = process.env.CORRAL_BENCH_WHISPER_MODEL;
  if (chosen) return resolve(chosen);
  const dir = join(o.modelsDir, "whisper");
  const names = readdirSync(dir).filter((name) => name.endsWith(".bin"));
  const trained = names.find((name) => !name.startsWith("for-tests-") && statSync(join(dir, name)).size > 10 << 20);
  return join(dir, trained ?? "for-tests-ggml-tiny.en.bin");
}

/** The baseline: the binding called directly, in this process. */
class DirectWhisper {
  readonly #whisper: Whisper;
  readonly #threads: number;

  constructor(modelPath: string, threads: number) {
    this.#whisper = new Whisper(modelPath);
    this.#threads = threads;
  }

  /** Transcribes `audio` `files` times, one after another; returns the wall seconds. */
  async run(audio: Buffer, files: number): Promise<number> {
    const started = performance.now();
    for (let i = 0; i < files; i++) {
      const samples = await decodeAudioAsync(audio, "jfk.wav");
      if (samples.length !== AUDIO_SECONDS * SAMPLE_RATE) throw new Error(`decoded ${samples.length} samples`);
      const params = new WhisperFullParams(WhisperSamplingStrategy.Greedy);
      params.nThreads = this.#threads;
      params.language = "en";
      params.translate = false;
      params.temperature = 0;
      params.printProgress = false;
      params.printRealtime = false;
      params.printTimestamps = false;
      params.printSpecial = false;
      // No onNewSegment: its threadsafe function would hold this process open until the
      // params are garbage-collected.
      this.#whisper.full(params, samples);
    }
    return (performance.now() - started) / 1000;
  }
}

/** Corral: one CPU worker slot claiming transcription jobs from Redis. */
class CorralWhisper {
  readonly #records: JobRecords;
  readonly #events: Redis;
  readonly #jobs: AudioJobs;
  readonly #model: CatalogModel;
  readonly #final = new Map<string, JobRecord | null>();
  readonly #waiters = new Set<() => void>();
  readonly #close: () => Promise<void>;

  private constructor(parts: {
    records: JobRecords;
    events: Redis;
    jobs: AudioJobs;
    model: CatalogModel;
    close: () => Promise<void>;
  }) {
    this.#records = parts.records;
    this.#events = parts.events;
    this.#jobs = parts.jobs;
    this.#model = parts.model;
    this.#close = parts.close;
    this.#events.on("message", (_channel: string, message: string) => {
      const event = parseJobEvent(message);
      this.#final.set(event.id, event.record === null ? null : (JSON.parse(event.record) as JobRecord));
      for (const wake of this.#waiters) wake();
    });
  }

  static async start(o: BenchOptions, modelPath: string, threads: number): Promise<CorralWhisper> {
    const prefix = "bench-transcription";
    const keys = new RedisKeys(prefix);
    const modelsDir = await mkdtemp(join(tmpdir(), "corral-bench-whisper-"));
    const file = "whisper-bench.bin";
    await symlink(modelPath, join(modelsDir, file));
    const redis = new Redis(o.redisUrl, { maxRetriesPerRequest: null, connectionName: "bench-transcription" });
    const events = new Redis(o.redisUrl, { connectionName: "bench-transcription-events" });
    await events.subscribe(keys.jobEventsChannel);
    const jobs = new AudioJobs(redis, keys);
    const bytes = 256 << 20;
    const model: CatalogModel = {
      id: "whisper-bench",
      aliases: [],
      kind: "whisper",
      file,
      file_size_bytes: statSync(modelPath).size,
      architecture: "whisper",
      parameters: 0,
      layers: 0,
      train_context_size: 448,
      context_size: 448,
      sequences: 1,
      embedding_length: null,
      has_chat_template: false,
      estimated_vram_bytes: bytes,
      estimated_ram_bytes: bytes,
      vram_override_bytes: null,
      requirement_bytes: bytes,
      placement: null,
      created_at: Date.now(),
    };
    await jobs.publishModel(model);
    // `corral worker` in its own process (supervisor and a forked slot), as deployed.
    const log = openSync(join(o.logDir, "transcription-worker.log"), "a");
    const worker = fork(new URL("./lib/entries/worker-entry.ts", import.meta.url), [], {
      execArgv: ["--import", "tsx"],
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        CORRAL_REDIS_URL: o.redisUrl,
        CORRAL_PREFIX: prefix,
        CORRAL_MODELS_DIR: modelsDir,
        CORRAL_CPU: "true",
        CORRAL_CPU_SLOTS: "1",
        CORRAL_THREADS: String(threads),
        CORRAL_WORKER_ID: "bench",
        CORRAL_WORKER_METRICS_PORT: "0",
        CORRAL_DRAIN_MS: "5000",
        CORRAL_LOG_LEVEL: "info",
      },
      stdio: ["ignore", log, log, "ipc"],
    });
    closeSync(log);
    for (const deadline = Date.now() + 120_000; (await redis.scard(keys.workers)) === 0; await sleep(100)) {
      if (worker.exitCode !== null) throw new Error(`the bench worker exited with ${worker.exitCode} (see its log)`);
      if (Date.now() > deadline) throw new Error("the bench worker slot did not come up");
    }
    return new CorralWhisper({
      records: new JobRecords(redis, keys),
      events,
      jobs,
      model,
      close: async () => {
        await stopChild(worker, "SIGTERM", 30_000);
        await jobs.close();
        events.disconnect();
        redis.disconnect();
        await rm(modelsDir, { recursive: true, force: true });
      },
    });
  }

  /**
   * Queues `files` transcriptions of `audio` at once. Returns the wall seconds until the
   * last one ended, and the seconds the jobs spent in the engine (their `generation_ms`).
   */
  async run(audio: Buffer, files: number): Promise<{ wallSeconds: number; engineSeconds: number }> {
    const started = performance.now();
    const ids: string[] = [];
    for (let i = 0; i < files; i++) ids.push(await this.#jobs.submit(this.#model, audio, "jfk.wav", AUDIO_SECONDS));
    await this.#until(() => ids.every((id) => this.#final.has(id)));
    const wallSeconds = (performance.now() - started) / 1000;
    let engineMs = 0;
    for (const id of ids) {
      const record = this.#final.get(id) ?? (await this.#records.get(id));
      if (record?.status !== "succeeded")
        throw new Error(`transcription ${id} ended ${record?.status}: ${JSON.stringify(record?.error)}`);
      engineMs += record.result?.timings.generation_ms ?? 0;
      this.#final.delete(id);
    }
    return { wallSeconds, engineSeconds: engineMs / 1000 };
  }

  #until(done: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error("transcriptions did not finish within 10 minutes"));
      }, 600_000);
      const check = () => {
        if (!done()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
      check();
    });
  }

  close(): Promise<void> {
    return this.#close();
  }
}

runAlone(import.meta.url, "transcription_rtf");
