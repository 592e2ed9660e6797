import { Whisper } from "@napi-rs/whisper";
import type { TranscriptSegment, TranscriptionResult } from "@corral/shared";
import type { TranscriptFormat } from "./audio-request.js";

/** A transcript as `/v1/audio/*` answers: the body and its content type. */
export interface TranscriptBody {
  contentType: string;
  body: string;
}

/** OpenAI's `usage` of duration-billed audio. */
export interface AudioUsage {
  type: "duration";
  /** Seconds of decoded audio. */
  seconds: number;
}

/** What a finished transcription or translation job gave, as the formats need it. */
export interface Transcript {
  task: "transcribe" | "translate";
  text: string;
  transcription: TranscriptionResult;
}

/**
 * The answer in `format`, as OpenAI shapes it:
 * - `json`: `{text, usage}`;
 * - `text`: the text and a newline;
 * - `srt` and `vtt`: one cue per segment (`HH:MM:SS,mmm` and `HH:MM:SS.mmm` times);
 * - `verbose_json`: `task`, `language` (its English name, as OpenAI gives it), `duration`,
 *   `text`, `segments` (unless only word timestamps were asked for), `words` (when asked
 *   for, and the worker gave them), and `usage`.
 */
export function formatTranscript(
  transcript: Transcript,
  format: TranscriptFormat,
  granularities: ReadonlySet<"segment" | "word"> = new Set(["segment"]),
): TranscriptBody {
  const { text, transcription } = transcript;
  switch (format) {
    case "json":
      return json({ text, usage: audioUsage(transcription.duration) });
    case "text":
      return { contentType: "text/plain; charset=utf-8", body: `${text}\n` };
    case "srt":
      return { contentType: "application/x-subrip; charset=utf-8", body: toSrt(transcription.segments) };
    case "vtt":
      return { contentType: "text/vtt; charset=utf-8", body: toVtt(transcription.segments) };
    case "verbose_json":
      return json(verboseJson(transcript, granularities));
  }
}

/** `verbose_json`'s object. */
export function verboseJson(transcript: Transcript, granularities: ReadonlySet<"segment" | "word">) {
  const { transcription } = transcript;
  const words = transcription.segments.flatMap((segment) => segment.words ?? []);
  return {
    task: transcript.task,
    language: languageName(transcription.language),
    duration: transcription.duration,
    text: transcript.text,
    ...(granularities.has("segment")
      ? {
          segments: transcription.segments.map((segment) => ({
            id: segment.id,
            seek: 0,
            start: segment.start,
            end: segment.end,
            text: segment.text,
            tokens: [] as number[],
            temperature: 0,
            avg_logprob: 0,
            compression_ratio: 0,
            no_speech_prob: 0,
          })),
        }
      : {}),
    ...(granularities.has("word") ? { words } : {}),
    usage: audioUsage(transcription.duration),
  };
}

export const audioUsage = (seconds: number): AudioUsage => ({ type: "duration", seconds });

/** SubRip: numbered cues from 1, `00:00:01,500 --> 00:00:04,000`, a blank line after each. */
export function toSrt(segments: readonly TranscriptSegment[]): string {
  return segments
    .map((s, i) => `${i + 1}\n${timestamp(s.start, ",")} --> ${timestamp(s.end, ",")}\n${cueText(s.text)}\n\n`)
    .join("");
}

/** WebVTT: the `WEBVTT` header, then one cue per segment, `00:00:01.500 --> 00:00:04.000`. */
export function toVtt(segments: readonly TranscriptSegment[]): string {
  return (
    "WEBVTT\n\n" +
    segments.map((s) => `${timestamp(s.start, ".")} --> ${timestamp(s.end, ".")}\n${cueText(s.text)}\n\n`).join("")
  );
}

/** `HH:MM:SS<sep>mmm` for `seconds`. */
export function timestamp(seconds: number, separator: "," | "."): string {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  return `${pad(h)}:${pad(m)}:${pad(s)}${separator}${pad(ms % 1000, 3)}`;
}

/** A cue's text: trimmed, and no blank line inside (a blank line would end the cue). */
const cueText = (text: string): string => text.trim().replace(/\n\s*\n/g, "\n");

/** The language's English name as OpenAI's verbose_json gives it (`english`), or the code when Whisper does not know it. */
export function languageName(code: string): string {
  const id = Whisper.langId(code);
  return (id >= 0 ? Whisper.langFull(id) : null) ?? code;
}

const json = (value: unknown): TranscriptBody => ({
  contentType: "application/json; charset=utf-8",
  body: JSON.stringify(value),
});
