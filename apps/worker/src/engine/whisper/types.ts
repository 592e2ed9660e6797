/*
 * The messages between a WhisperModel (in the slot process) and its whisper host (a child
 * process holding one whisper.cpp model), over the fork IPC channel with `advanced`
 * serialization, so that the audio's bytes travel as a Uint8Array.
 */

/** How one job runs: Whisper's parameters as Corral sets them. */
export interface WhisperRunParams {
  /** Spoken language as a code (`en`), or `auto` to detect it. */
  language: string;
  /** Translate to English (`translation` jobs). */
  translate: boolean;
  /** Whisper's initial prompt, when the job has one. */
  prompt: string | null;
  temperature: number;
  threads: number;
}

/** Slot → host. */
export type HostRequest = { type: "run"; id: number; audio: Uint8Array; filename: string; params: WhisperRunParams };

/** One segment as whisper.cpp gives it, times in seconds from the start of the audio. */
export interface HostSegment {
  text: string;
  start: number;
  end: number;
}

/** Host → slot. */
export type HostMessage =
  /** The model is loaded; the host takes runs. */
  | { type: "ready"; multilingual: boolean }
  /** The model did not load (the host exits after this). */
  | { type: "load-error"; message: string }
  /** The audio decoded to `seconds` of 16 kHz mono samples. */
  | { type: "decoded"; id: number; seconds: number }
  | { type: "segment"; id: number; segment: HostSegment }
  /** The run finished: every segment was sent before this. */
  | { type: "done"; id: number; text: string; language: string; decodeMs: number; fullMs: number }
  /** The run failed; `phase` says where (`decode`: the bytes are not audio this build can read). */
  | { type: "error"; id: number; phase: "decode" | "run"; message: string };
