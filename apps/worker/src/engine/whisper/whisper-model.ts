import { fork, type ChildProcess } from "node:child_process";
import { performance } from "node:perf_hooks";
import type { JobPayload, TranscriptSegment, TranscriptionResult } from "@corral/shared";
import type { Logger } from "pino";
import { InvalidJobError, ModelDisposedError, ModelFileError } from "../errors.js";
import type { EngineResult } from "../types.js";
import type { HostMessage, HostRequest, WhisperRunParams } from "./types.js";

/** The host's entry: the compiled `.js` beside this file, or the `.ts` source under tsx. */
const HOST_ENTRY = new URL(
  import.meta.url.endsWith(".ts") ? "./whisper-host.ts" : "./whisper-host.js",
  import.meta.url,
);
/** Lines of the host's stderr (whisper.cpp's log) kept to explain a failed load. */
const STDERR_LINES = 20;

export interface WhisperModelOptions {
  modelId: string;
  /** Absolute path of the ggml `.bin` file. */
  path: string;
  /** whisper.cpp threads of each run (keep it at or below the cores the slot has). */
  threads: number;
  logger: Logger;
  onDispose?: (model: WhisperModel) => void;
}

/** What one transcription produced. */
interface WhisperOutput {
  text: string;
  transcription: TranscriptionResult;
  /** Decoding plus whisper.cpp's run, ms. */
  runMs: number;
}

export interface WhisperRunOptions {
  /** The upload's bytes as they came (wav, mp3, flac, ogg, webm): the host decodes them. */
  audio?: Uint8Array;
  /** Aborting kills the run's host: the promise rejects with the abort reason. */
  signal?: AbortSignal;
  /**
   * Each segment's text, in order (a space before all but the first, so that the texts add
   * up to the transcript). The binding delivers a run's segments when whisper.cpp's
   * `full()` returns, not while it runs.
   */
  onText?: (text: string) => void;
}

interface Running {
  id: number;
  jobId: string;
  host: ChildProcess;
  segments: TranscriptSegment[];
  seconds: number;
  onText: (text: string) => void;
  resolve: (output: WhisperOutput) => void;
  reject: (error: unknown) => void;
  started: number;
}

/**
 * One whisper.cpp model, held by a whisper host process (whisper-host.ts) so that the
 * synchronous `full()` never blocks the slot's event loop. Jobs run one at a time, in
 * order. A cancelled run kills the host (whisper.cpp cannot be interrupted in-process:
 * a worker_thread's terminate() waits for `full()` to return); the next run starts a new
 * host and loads the model again. Create with `await WhisperModel.create(options)`.
 */
export class WhisperModel {
  readonly modelId: string;
  /** How long the first load took, ms. */
  readonly loadMs: number;
  readonly #o: WhisperModelOptions;
  readonly #log: Logger;
  #host: ChildProcess | null;
  #running: Running | null = null;
  #tail: Promise<unknown> = Promise.resolve();
  #nextId = 1;
  #disposed = false;

  private constructor(options: WhisperModelOptions, host: ChildProcess, loadMs: number) {
    this.#o = options;
    this.modelId = options.modelId;
    this.#log = options.logger;
    this.loadMs = loadMs;
    this.#host = host;
    this.#watch(host);
  }

  /** Starts a host and loads the model in it. Throws ModelFileError when whisper.cpp cannot load the file. */
  static async create(options: WhisperModelOptions): Promise<WhisperModel> {
    const started = performance.now();
    const host = await startHost(options.path, options.logger);
    const model = new WhisperModel(options, host, performance.now() - started);
    options.logger.info({ loadMs: Math.round(model.loadMs), threads: options.threads }, "whisper model loaded");
    return model;
  }

  /**
   * Transcribes (or, for `translation` jobs, translates to English) the job's audio. The
   * result's usage counts no tokens, and the audio's seconds. Rejects with the signal's
   * reason when it aborts (also while it waits for the job before it), InvalidJobError for
   * a job that is not audio or audio that does not decode, ModelDisposedError once the
   * model is unloaded, and an Error when whisper.cpp fails or its host dies.
   */
  async run(job: JobPayload, options: WhisperRunOptions = {}): Promise<EngineResult> {
    if (job.kind !== "transcription" && job.kind !== "translation")
      throw new InvalidJobError(
        job.id,
        `a Whisper model runs transcriptions and translations, not ${job.kind} jobs`,
        "model",
      );
    const audio = options.audio;
    if (job.audio === undefined || audio === undefined)
      throw new InvalidJobError(job.id, "a transcription job needs its audio", "audio");
    const params: WhisperRunParams = {
      language: job.language ?? "auto",
      translate: job.kind === "translation",
      prompt: job.prompt ?? null,
      temperature: job.temperature,
      threads: this.#o.threads,
    };
    const filename = job.audio.filename;
    const signal = options.signal ?? new AbortController().signal;
    const onText = options.onText ?? (() => undefined);
    const turn = this.#tail.then(() => this.#runNow(job.id, params, filename, audio, signal, onText));
    this.#tail = turn.catch(() => undefined);
    const output = await untilAborted(turn, signal);
    const seconds = output.transcription.duration;
    return {
      text: output.text,
      finish_reason: "stop",
      usage: { prompt_tokens: 0, completion_tokens: 0, audio_seconds: seconds },
      ttft_ms: null,
      generation_ms: output.runMs,
      transcription: output.transcription,
    };
  }

  async #runNow(
    jobId: string,
    params: WhisperRunParams,
    filename: string,
    audio: Uint8Array,
    signal: AbortSignal,
    onText: (text: string) => void,
  ): Promise<WhisperOutput> {
    if (signal.aborted) throw signal.reason;
    if (this.#disposed) throw new ModelDisposedError(this.modelId);
    // A cancel killed the last host: this run loads the model again.
    const host = (this.#host ??= await startHost(this.#o.path, this.#log));
    this.#watch(host);
    const id = this.#nextId++;
    return new Promise<WhisperOutput>((resolve, reject) => {
      const onAbort = () => {
        // whisper.cpp cannot stop mid-run: the host goes, and the CPU with it.
        this.#log.info({ run: id }, "cancelling a transcription: stopping the whisper host");
        this.#kill();
        finish();
        reject(signal.reason);
      };
      const finish = () => {
        signal.removeEventListener("abort", onAbort);
        if (this.#running?.id === id) this.#running = null;
      };
      this.#running = {
        id,
        jobId,
        host,
        segments: [],
        seconds: 0,
        onText,
        started: performance.now(),
        resolve: (output) => {
          finish();
          resolve(output);
        },
        reject: (error) => {
          finish();
          reject(error);
        },
      };
      signal.addEventListener("abort", onAbort, { once: true });
      const request: HostRequest = { type: "run", id, audio, filename, params };
      host.send(request);
    });
  }

  /** Listens to a host once. */
  #watch(host: ChildProcess): void {
    if (host.listenerCount("message") > 0) return;
    host.on("message", (message: HostMessage) => this.#onMessage(message));
    host.on("exit", (code, signal) => {
      if (this.#host === host) this.#host = null;
      const running = this.#running;
      if (running?.host === host && !this.#disposed)
        running.reject(new Error(`The whisper host stopped while transcribing (exit code ${code}, signal ${signal})`));
    });
  }

  #onMessage(message: HostMessage): void {
    const running = this.#running;
    if (running === null || !("id" in message) || message.id !== running.id) return;
    switch (message.type) {
      case "decoded":
        running.seconds = message.seconds;
        return;
      case "segment": {
        const { text, start, end } = message.segment;
        running.onText(running.segments.length === 0 ? text : ` ${text}`);
        running.segments.push({ id: running.segments.length, start, end, text });
        return;
      }
      case "done":
        running.resolve({
          text: message.text.trim(),
          transcription: { language: message.language, duration: running.seconds, segments: running.segments },
          runMs: performance.now() - running.started,
        });
        return;
      case "error":
        running.reject(
          message.phase === "decode"
            ? new InvalidJobError(running.jobId, `the audio could not be decoded: ${message.message}`, "file")
            : new Error(`whisper.cpp failed: ${message.message}`),
        );
        return;
    }
  }

  #kill(): void {
    const host = this.#host;
    this.#host = null;
    if (host && host.exitCode === null && host.signalCode === null) host.kill("SIGKILL");
  }

  /** Stops the host. Idempotent; runs are refused afterwards. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#running?.reject(new ModelDisposedError(this.modelId));
    this.#kill();
    this.#o.onDispose?.(this);
  }
}

/** Forks a host for `path` and waits until it has loaded the model. */
function startHost(path: string, log: Logger): Promise<ChildProcess> {
  const host = fork(HOST_ENTRY, [path], { serialization: "advanced", stdio: ["ignore", "ignore", "pipe", "ipc"] });
  const stderr: string[] = [];
  host.stderr?.setEncoding("utf8");
  host.stderr?.on("data", (chunk: string) => {
    for (const line of chunk.split("\n")) {
      if (line === "") continue;
      stderr.push(line);
      if (stderr.length > STDERR_LINES) stderr.shift();
      log.trace({ component: "whisper.cpp" }, line);
    }
  });
  return new Promise<ChildProcess>((resolve, reject) => {
    const onMessage = (message: HostMessage) => {
      if (message.type === "ready") {
        cleanup();
        resolve(host);
      } else if (message.type === "load-error") {
        cleanup();
        host.kill("SIGKILL");
        reject(
          new ModelFileError(path, `whisper.cpp cannot load it: ${message.message} (${stderr.slice(-3).join("; ")})`),
        );
      }
    };
    const onExit = (code: number | null, signal: string | null) => {
      cleanup();
      reject(
        new ModelFileError(
          path,
          `the whisper host exited while loading it (code ${code}, signal ${signal}): ${stderr.slice(-3).join("; ")}`,
        ),
      );
    };
    const cleanup = () => {
      host.off("message", onMessage);
      host.off("exit", onExit);
    };
    host.on("message", onMessage);
    host.on("exit", onExit);
  });
}

/** `promise`, or a rejection with the signal's reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as unknown);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as unknown);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
