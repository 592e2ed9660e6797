import type { IncomingMessage } from "node:http";
import type { Readable } from "node:stream";
import busboy from "busboy";
import { InvalidRequestError } from "@corral/shared";
import { UnsupportedMediaTypeError } from "../../http/errors.js";
import { AudioTooLargeError } from "./errors.js";

/** Room for multipart boundaries, headers and the other fields on top of the file. */
const MULTIPART_OVERHEAD = 64 * 1024;

/** The longest text field, bytes (a `prompt` of 4096 characters fits in any script). */
const FIELD_BYTES = 16 * 1024;

/** A multipart audio request as received: the file's bytes and the other fields. */
export interface ReceivedAudio {
  data: Buffer;
  /** The file name the client gave (folders and control characters removed); `audio` when none. */
  filename: string;
  /** Each text field's values in order (`timestamp_granularities[]` may repeat). */
  fields: Map<string, string[]>;
}

/**
 * Reads a `multipart/form-data` audio request (OpenAI's `/v1/audio/*` shape: a `file` part
 * and text fields, in any order) into memory, the file at most `maxBytes`. Past the limit
 * the rest of the upload is read and dropped so the client gets the 413 naming
 * `CORRAL_MAX_AUDIO_BYTES`; a body cut short, or one that is not multipart, is a 4xx too.
 */
export async function receiveAudio(req: IncomingMessage, maxBytes: number): Promise<ReceivedAudio> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes + MULTIPART_OVERHEAD) {
    // Read nothing: the connection is closed after the answer.
    throw new AudioTooLargeError(declared, maxBytes);
  }
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      limits: { files: 1, fields: 32, fieldSize: FIELD_BYTES, parts: 64, fileSize: maxBytes },
      defParamCharset: "utf8",
    });
  } catch {
    throw new UnsupportedMediaTypeError(
      "Send the audio as multipart/form-data with a `file` part and a `model` field.",
    );
  }

  const fields = new Map<string, string[]>();
  let file: { chunks: Buffer[]; bytes: number; filename: string; truncated: boolean } | null = null;
  const finished = new Promise<void>((resolve, reject) => {
    parser.on("field", (name: string, value: string, info: busboy.FieldInfo) => {
      if (info.valueTruncated) {
        reject(new InvalidRequestError(`\`${name}\` is longer than ${FIELD_BYTES} bytes.`, name, "invalid_value"));
        return;
      }
      const values = fields.get(name) ?? [];
      values.push(value);
      fields.set(name, values);
    });
    parser.on("file", (name: string, stream: Readable, info: busboy.FileInfo) => {
      if (name !== "file" || file) {
        stream.resume();
        return;
      }
      const current = { chunks: [] as Buffer[], bytes: 0, filename: sanitizeFilename(info.filename), truncated: false };
      file = current;
      stream.on("data", (chunk: Buffer) => {
        current.chunks.push(chunk);
        current.bytes += chunk.length;
      });
      stream.on("limit", () => {
        current.truncated = true;
        current.chunks = [];
      });
    });
    parser.on("close", () => resolve());
    parser.on("error", (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))));
    req.on("aborted", () => reject(new InvalidRequestError("The upload was cut short.", "file", "incomplete_body")));
  });
  req.pipe(parser);
  try {
    await finished;
  } catch (error) {
    req.unpipe(parser);
    req.resume();
    if (error instanceof InvalidRequestError) throw error;
    throw new InvalidRequestError(
      `The multipart body could not be read: ${(error as Error).message}.`,
      "file",
      "invalid_multipart",
    );
  }
  const received = file as { chunks: Buffer[]; bytes: number; filename: string; truncated: boolean } | null;
  if (!received) throw new InvalidRequestError("The request has no `file` part.", "file", "missing_required_parameter");
  if (received.truncated) throw new AudioTooLargeError(null, maxBytes);
  return { data: Buffer.concat(received.chunks, received.bytes), filename: received.filename, fields };
}

/** The file name as given, without folders or control characters; `audio` when none. */
function sanitizeFilename(name: string | undefined): string {
  const base = [...((name ?? "").split(/[\\/]/).pop() ?? "")]
    .filter((c) => c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) !== 0x7f)
    .join("")
    .trim();
  return base.slice(0, 255) || "audio";
}
