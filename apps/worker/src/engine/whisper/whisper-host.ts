/**
 * Entry of a whisper host: a child process of a slot that holds one whisper.cpp model
 * (`@napi-rs/whisper`) and runs one job at a time. `Whisper.full()` is synchronous and
 * cannot be aborted (the binding's abort callback only notifies JS and always returns
 * false), so it runs here, off the slot's event loop, and a cancel kills this process.
 *
 * argv: the model's path. Messages: see types.ts. It exits when its slot goes away.
 */
import { performance } from "node:perf_hooks";
import { setImmediate as nextTurn } from "node:timers/promises";
import { Whisper, WhisperFullParams, WhisperSamplingStrategy, decodeAudioAsync } from "@napi-rs/whisper";
import type { HostMessage, HostRequest, HostSegment } from "./types.js";

/** whisper.cpp's input rate: decodeAudioAsync gives 16 kHz mono samples. */
const SAMPLE_RATE = 16_000;
/** Segment times come in whisper.cpp's 10 ms ticks. */
const TICKS_PER_SECOND = 100;

function send(message: HostMessage): void {
  process.send?.(message);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function run(whisper: Whisper, request: HostRequest): Promise<void> {
  const { id, params } = request;
  const decodeStart = performance.now();
  let samples: Float32Array;
  try {
    samples = await decodeAudioAsync(request.audio, request.filename);
  } catch (error) {
    send({ type: "error", id, phase: "decode", message: messageOf(error) });
    return;
  }
  const decodeMs = performance.now() - decodeStart;
  send({ type: "decoded", id, seconds: samples.length / SAMPLE_RATE });

  const full = new WhisperFullParams(WhisperSamplingStrategy.Greedy);
  full.nThreads = params.threads;
  // An English-only model (`.en`) has no language to detect and nothing to translate from;
  // whisper.cpp would still run its detection (on the weights it has) and report it.
  const multilingual = whisper.isMultilingual !== 0;
  full.language = multilingual ? params.language : "en";
  full.translate = multilingual && params.translate;
  full.temperature = params.temperature;
  if (params.prompt !== null && params.prompt !== "") full.initialPrompt = params.prompt;
  full.printProgress = false;
  full.printRealtime = false;
  full.printTimestamps = false;
  full.printSpecial = false;
  full.onNewSegment = (segment) => {
    const out: HostSegment = {
      text: segment.text,
      start: segment.start / TICKS_PER_SECOND,
      end: segment.end / TICKS_PER_SECOND,
    };
    send({ type: "segment", id, segment: out });
  };
  const fullStart = performance.now();
  let text: string;
  try {
    text = whisper.full(full, samples);
  } catch (error) {
    send({ type: "error", id, phase: "run", message: messageOf(error) });
    return;
  }
  const fullMs = performance.now() - fullStart;
  // The binding queues onNewSegment to this thread's event loop, which full() blocked:
  // the segments arrive after it returns. Two loop turns deliver them, before "done".
  for (let i = 0; i < 3; i++) await nextTurn();
  send({ type: "done", id, text, language: Whisper.lang(whisper.fullLangId) ?? params.language, decodeMs, fullMs });
}

function main(): void {
  const path = process.argv[2];
  if (!process.send || path === undefined) {
    console.error("whisper-host runs as a child of a Corral slot, with the model's path as its argument.");
    process.exit(2);
  }
  let whisper: Whisper;
  try {
    whisper = new Whisper(path);
  } catch (error) {
    send({ type: "load-error", message: messageOf(error) });
    process.disconnect();
    return;
  }
  let queue = Promise.resolve();
  process.on("message", (request: HostRequest) => {
    if (request.type !== "run") return;
    queue = queue
      .then(() => run(whisper, request))
      .catch((error: unknown) => {
        send({ type: "error", id: request.id, phase: "run", message: messageOf(error) });
      });
  });
  process.on("disconnect", () => process.exit(0));
  send({ type: "ready", multilingual: whisper.isMultilingual !== 0 });
}

main();
