import { Whisper } from "@napi-rs/whisper";
import { z } from "zod";
import { InvalidRequestError, ValidationError } from "@corral/shared";

/** What `/v1/audio/*` can answer with (OpenAI's `response_format`). */
export const TranscriptFormat = z.enum(["json", "text", "srt", "vtt", "verbose_json"]);
export type TranscriptFormat = z.infer<typeof TranscriptFormat>;

/** The longest `prompt` accepted, characters (Whisper reads at most 224 tokens of it). */
export const MAX_AUDIO_PROMPT_CHARS = 4096;

/** A checked `/v1/audio/transcriptions` or `/v1/audio/translations` request, besides its file. */
export interface AudioRequest {
  model: string;
  /** ISO-639-1 code of the spoken language; null: detect it. */
  language: string | null;
  /** Whisper's initial prompt; null: none. */
  prompt: string | null;
  temperature: number;
  responseFormat: TranscriptFormat;
  /** `timestamp_granularities[]`: segment (the default) and/or word. */
  granularities: ReadonlySet<"segment" | "word">;
  stream: boolean;
}

const language = z
  .string()
  .trim()
  .toLowerCase()
  .refine((code) => /^[a-z]{2,3}$/.test(code) && Whisper.langId(code) >= 0, {
    message: "expected a language Whisper knows, as an ISO-639-1 code such as en, de or ja",
  });

const booleanField = z.enum(["true", "false"], { message: "expected true or false" }).transform((v) => v === "true");

const AudioFields = z.object({
  model: z.string({ message: "expected the model's id" }).min(1, "expected the model's id"),
  language: language.optional(),
  prompt: z.string().max(MAX_AUDIO_PROMPT_CHARS).optional(),
  temperature: z
    .string()
    .regex(/^\s*-?\d+(\.\d+)?\s*$/, "expected a number from 0 to 1")
    .transform(Number)
    .pipe(z.number().min(0).max(1))
    .optional(),
  response_format: TranscriptFormat.optional(),
  timestamp_granularities: z
    .array(z.enum(["segment", "word"]))
    .max(2)
    .optional(),
  stream: booleanField.optional(),
});

/** Fields sent once; a second value of one of them is refused rather than silently dropped. */
const SINGLE = ["model", "language", "prompt", "temperature", "response_format", "stream"] as const;

/**
 * Checks the text fields of an audio request (OpenAI's names; other fields are ignored, as
 * OpenAI does). `timestamp_granularities[]` may repeat; it needs `verbose_json`, as on OpenAI.
 * `stream` returns `transcript.text.*` events, so it goes with `json` or `text` only.
 * @throws ValidationError (400) naming the field.
 */
export function parseAudioRequest(fields: ReadonlyMap<string, readonly string[]>): AudioRequest {
  const raw: Record<string, unknown> = {};
  for (const name of SINGLE) {
    const values = fields.get(name);
    if (values === undefined) continue;
    if (values.length > 1) throw invalid(name, `\`${name}\` was sent ${values.length} times; send it once.`);
    raw[name] = values[0];
  }
  const granularities = [
    ...(fields.get("timestamp_granularities[]") ?? []),
    ...(fields.get("timestamp_granularities") ?? []),
  ];
  if (granularities.length > 0) raw.timestamp_granularities = granularities;
  const parsed = AudioFields.safeParse(raw);
  if (!parsed.success) throw ValidationError.fromZod(parsed.error);
  const request = parsed.data;
  const responseFormat = request.response_format ?? "json";
  if (request.timestamp_granularities && responseFormat !== "verbose_json") {
    throw invalid("timestamp_granularities", "`timestamp_granularities[]` needs `response_format` `verbose_json`.");
  }
  const stream = request.stream ?? false;
  if (stream && responseFormat !== "json" && responseFormat !== "text") {
    throw invalid(
      "stream",
      `\`stream\` sends text events; it goes with \`response_format\` json or text, not ${responseFormat}.`,
    );
  }
  return {
    model: request.model,
    language: request.language ?? null,
    prompt: request.prompt === undefined || request.prompt === "" ? null : request.prompt,
    temperature: request.temperature ?? 0,
    responseFormat,
    granularities: new Set(request.timestamp_granularities ?? ["segment"]),
    stream,
  };
}

const invalid = (param: string, message: string): InvalidRequestError =>
  new InvalidRequestError(message, param, "invalid_value");
