import type { IncomingMessage } from "node:http";
import { PassThrough, type Readable } from "node:stream";
import busboy from "busboy";
import { FilePurpose, InvalidRequestError, PayloadTooLargeError, type StoredFile } from "@corral/shared";
import { UnsupportedMediaTypeError } from "../http/errors.js";
import { newFileId } from "./file-id.js";
import { FileLimitError, limitErrorToHttp, type WrittenFile } from "./file-store.js";
import type { FileService } from "./file-service.js";

/** Room for multipart boundaries and headers on top of the file itself. */
const MULTIPART_OVERHEAD = 1024 * 1024;

/**
 * Reads a `multipart/form-data` upload (`file` and `purpose` parts, in either order) and
 * stores the file for `tenant`. The file part streams straight to the file store through
 * the byte and line limits; it is never held whole in memory. Past a limit, the rest of
 * the upload is read and dropped so the client gets the error answer, and nothing is kept.
 */
export async function receiveUpload(req: IncomingMessage, files: FileService, tenant: string): Promise<StoredFile> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > files.maxBytes + MULTIPART_OVERHEAD) {
    throw new PayloadTooLargeError(
      `The upload is ${declared} bytes, over the file limit of ${files.maxBytes} bytes (CORRAL_MAX_FILE_BYTES). Split it into smaller files.`,
    );
  }
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      limits: { files: 1, fields: 16, fieldSize: 4096, parts: 32 },
      defParamCharset: "utf8",
    });
  } catch {
    throw new UnsupportedMediaTypeError("Send the file as multipart/form-data with a `file` part and `purpose=batch`.");
  }

  const fields = new Map<string, string>();
  let upload: { id: string; filename: string; guard: PassThrough; done: Promise<WrittenFile | Error> } | null = null;

  const finished = new Promise<void>((resolve, reject) => {
    parser.on("field", (name: string, value: string) => fields.set(name, value));
    parser.on("file", (name: string, stream: Readable, info: busboy.FileInfo) => {
      if (name !== "file" || upload) {
        stream.resume();
        return;
      }
      const id = newFileId();
      const guard = new PassThrough();
      stream.pipe(guard);
      const done = files.store.write(id, guard, files.uploadLimits).then(
        (written) => written,
        (error: unknown) => {
          // Keep reading the part (and dropping it) so the parser reaches the end.
          stream.unpipe(guard);
          stream.resume();
          return error instanceof Error ? error : new Error(String(error));
        },
      );
      upload = { id, filename: sanitizeFilename(info.filename), guard, done };
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
    const current = upload as { guard: PassThrough; done: Promise<unknown> } | null;
    if (current) {
      current.guard.destroy(error instanceof Error ? error : new Error(String(error)));
      await current.done;
    }
    if (error instanceof InvalidRequestError) throw error;
    throw new InvalidRequestError(
      `The multipart body could not be read: ${(error as Error).message}.`,
      "file",
      "invalid_multipart",
    );
  }

  const received = upload as { id: string; filename: string; done: Promise<WrittenFile | Error> } | null;
  if (!received) {
    throw new InvalidRequestError("The upload has no `file` part.", "file", "missing_required_parameter");
  }
  const written = await received.done;
  if (written instanceof FileLimitError) throw limitErrorToHttp(written);
  if (written instanceof Error) throw written;

  const purpose = fields.get("purpose");
  const parsed = FilePurpose.safeParse(purpose);
  if (!parsed.success || parsed.data !== "batch") {
    await files.store.remove(received.id);
    throw new InvalidRequestError(
      purpose === undefined
        ? "Missing `purpose`: send `purpose=batch` with the file."
        : `Invalid value for \`purpose\`: Corral accepts only \`batch\` uploads (got ${JSON.stringify(purpose)}).`,
      "purpose",
      purpose === undefined ? "missing_required_parameter" : "invalid_value",
    );
  }
  return files.register(tenant, { id: received.id, filename: received.filename, purpose: "batch", ...written });
}

/** The file name as given, without folders or control characters; `upload.jsonl` when none. */
function sanitizeFilename(name: string | undefined): string {
  const base = [...((name ?? "").split(/[\\/]/).pop() ?? "")]
    .filter((c) => c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) !== 0x7f)
    .join("")
    .trim();
  return base.slice(0, 255) || "upload.jsonl";
}
