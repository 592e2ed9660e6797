import { decodeAudioAsync } from "@napi-rs/whisper";
import { AudioTooLongError, InvalidAudioError } from "./errors.js";

/** Whisper's input rate: decoded audio is 16 kHz mono. */
export const WHISPER_SAMPLE_RATE = 16_000;
/** How much shorter than its header says a file may decode before it counts as cut short, seconds. */
const TRUNCATION_SLACK_SECONDS = 0.05;

/**
 * Decodes an upload (off the event loop, with the same decoder the worker uses) to check it
 * is audio and to measure it: its duration comes from the decoded samples, never from
 * headers. A header that promises more audio than decodes (a WAV or FLAC cut short) is
 * refused too, since decoders otherwise return the part that is there.
 * @returns the duration in seconds.
 * @throws InvalidAudioError (400, `file`) for an empty, undecodable, cut-short or silent-less (no samples) file.
 * @throws AudioTooLongError (400, `file`) past `maxSeconds`.
 */
export async function measureAudio(
  data: Buffer,
  filename: string,
  maxSeconds: number,
  signal?: AbortSignal,
): Promise<number> {
  if (data.length === 0) throw new InvalidAudioError("the file is empty (0 bytes)", "empty_audio");
  let samples: Float32Array;
  try {
    samples = await decodeAudioAsync(data, filename, signal);
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new InvalidAudioError(decoderReason(error));
  }
  const seconds = samples.length / WHISPER_SAMPLE_RATE;
  if (samples.length === 0)
    throw new InvalidAudioError("no audio could be decoded from it (cut short?)", "empty_audio");
  const declared = declaredSeconds(data);
  if (declared !== null && seconds < declared - TRUNCATION_SLACK_SECONDS) {
    throw new InvalidAudioError(
      `its header promises ${declared.toFixed(2)} s of audio but only ${seconds.toFixed(2)} s decode (the file is cut short)`,
      "truncated_audio",
    );
  }
  if (seconds > maxSeconds) throw new AudioTooLongError(seconds, maxSeconds);
  return seconds;
}

/** The decoder's reason without its wrapper text (`no suitable format reader found`). */
function decoderReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const reason = message.replace(/^Decode audio into Float32Array failed:\s*/i, "").trim();
  return `it could not be decoded (${reason.slice(0, 200) || "unknown format"})`;
}

/**
 * The duration a WAV or FLAC header declares, seconds; null for other formats, or headers
 * that do not say (streamed WAVs with a 0 or 0xFFFFFFFF data size, FLAC with 0 samples).
 */
export function declaredSeconds(data: Buffer): number | null {
  if (data.length >= 12 && data.toString("latin1", 0, 4) === "RIFF" && data.toString("latin1", 8, 12) === "WAVE") {
    let byteRate = 0;
    for (let at = 12; at + 8 <= data.length;) {
      const id = data.toString("latin1", at, at + 4);
      const size = data.readUInt32LE(at + 4);
      if (id === "fmt " && at + 16 <= data.length) byteRate = data.readUInt32LE(at + 16);
      if (id === "data") {
        if (byteRate === 0 || size === 0 || size === 0xffffffff) return null;
        return size / byteRate;
      }
      at += 8 + size + (size % 2);
    }
    return null;
  }
  // fLaC, then the STREAMINFO block: sample rate (20 bits) and total samples (36 bits) at bytes 18-25.
  if (data.length >= 26 && data.toString("latin1", 0, 4) === "fLaC" && (data[4]! & 0x7f) === 0) {
    const rate = (data[18]! << 12) | (data[19]! << 4) | (data[20]! >> 4);
    const total = (data[21]! & 0x0f) * 2 ** 32 + data.readUInt32BE(22);
    return rate > 0 && total > 0 ? total / rate : null;
  }
  return null;
}
