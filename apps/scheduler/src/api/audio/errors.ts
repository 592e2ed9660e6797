import { InvalidRequestError } from "@corral/shared";

/** An upload over `CORRAL_MAX_AUDIO_BYTES`: 413 naming the limit and `file`. */
export class AudioTooLargeError extends InvalidRequestError {
  override readonly name = "AudioTooLargeError";
  override readonly status = 413;
  /** Bytes the request declared (null when the limit was found while reading). */
  readonly declaredBytes: number | null;
  readonly limitBytes: number;
  constructor(declaredBytes: number | null, limitBytes: number) {
    super(
      `The audio file is ${declaredBytes === null ? "larger than" : `about ${declaredBytes} bytes, over`} the limit of ` +
        `${limitBytes} bytes (CORRAL_MAX_AUDIO_BYTES). Split it, or compress it (mp3, ogg).`,
      "file",
      "file_too_large",
    );
    this.declaredBytes = declaredBytes;
    this.limitBytes = limitBytes;
  }
}

/** Audio longer than `CORRAL_MAX_AUDIO_SECONDS` once decoded: 400 naming the limit and `file`. */
export class AudioTooLongError extends InvalidRequestError {
  override readonly name = "AudioTooLongError";
  readonly seconds: number;
  readonly limitSeconds: number;
  constructor(seconds: number, limitSeconds: number) {
    super(
      `The audio is ${seconds.toFixed(1)} s long once decoded, over the limit of ${limitSeconds} s ` +
        `(CORRAL_MAX_AUDIO_SECONDS). Split it into shorter files.`,
      "file",
      "audio_too_long",
    );
    this.seconds = seconds;
    this.limitSeconds = limitSeconds;
  }
}

/** A file that cannot be decoded as audio, is cut short, or holds none: 400 naming `file`. */
export class InvalidAudioError extends InvalidRequestError {
  override readonly name = "InvalidAudioError";
  /** Why, e.g. `the file is empty`. */
  readonly reason: string;
  constructor(reason: string, code: "invalid_audio" | "truncated_audio" | "empty_audio" = "invalid_audio") {
    super(`The file is not usable audio: ${reason}. Send wav, mp3, flac, ogg or webm.`, "file", code);
    this.reason = reason;
  }
}
