import type { IncomingMessage } from "node:http";
import { PassThrough, type Readable } from "node:stream";
import busboy from "busboy";
import {
  FilePurpose,
  FileQuotaError,
  InvalidRequestError,
  PayloadTooLargeError,
  type StoredFile,
} from "@corral/shared";
import { UnsupportedMediaTypeError } from "../http/errors.js";
import { newFileId } from "./file-id.js";
import { FileLimitError, limitErrorToHttp, type WrittenFile } from "./file-store.js";
import type { FileService } from "./file-service.js";

/** Room for multipart boundaries and headers on top of the file itself. */
const MULTIPART_OVERHEAD = 1024 * 1024;

/** OpenAI's bounds on `expires_after[seconds]`: one hour to 30 days. */
const MIN_EXPIRY_SECONDS = 3600;
const MAX_EXPIRY_SECONDS = 30 * 24 * 3600;

/**
 * Reads a `multipart/form-data` upload (`file` and `purpose` parts, in either order) and
 * stores the file for `tenant`. The file part streams straight to the file store through
 * the byte and line limits and the tenant's file quota; it is never held whole in memory.
 * Past a limit, the rest of the upload is read and dropped so the client gets the error
 * answer, and nothing is kept; nor is anything kept when the client goes away mid-upload.
 * `expires_after[anchor]=created_at` and `expires_after[seconds]` set the file's expiry.
 */
export async function receiveUpload(req: IncomingMessage, files: FileService, tenant: string): Promise<StoredFile> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > files.maxBytes + MULTIPART_OVERHEAD) {
    throw new PayloadTooLargeError(
      `The upload is ${declared} bytes, over the file limit of ${files.maxBytes} bytes (CORRAL_MAX_FILE_BYTES). Split it into smaller files.`,
    );
  }
  // The tenant's quota caps this upload at what is left of it.
  const used = await files.usedBytes(tenant);
  const room = files.maxTenantBytes - used;
  if (room <= 0) throw new FileQuotaError(tenant, used, files.maxTenantBytes);
  const limits = { ...files.uploadLimits, maxBytes: Math.min(files.maxBytes, room) };
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
      const done = files.store.write(id, guard, limits).then(
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
    const current = upload as { id: string; guard: PassThrough; done: Promise<unknown> } | null;
    if (current) {
      current.guard.destroy(error instanceof Error ? error : new Error(String(error)));
      // The file part may have been stored whole before the form broke off: drop it.
      if (!((await current.done) instanceof Error)) await files.store.remove(current.id);
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
  if (written instanceof FileLimitError) {
    if (written.kind === "bytes" && written.limit < files.maxBytes) {
      throw new FileQuotaError(tenant, used, files.maxTenantBytes);
    }
    throw limitErrorToHttp(written);
  }
  if (written instanceof Error) throw written;

  let expiresAfterSeconds: number | null;
  try {
    expiresAfterSeconds = expiryOf(fields);
  } catch (error) {
    await files.store.remove(received.id);
    throw error;
  }
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
  return files.register(tenant, {
    id: received.id,
    filename: received.filename,
    purpose: "batch",
    ...written,
    expiresAfterSeconds,
  });
}

/** `expires_after[anchor]` and `expires_after[seconds]` → seconds after creation, or null when not given. */
function expiryOf(fields: ReadonlyMap<string, string>): number | null {
  const anchor = fields.get("expires_after[anchor]");
  const seconds = fields.get("expires_after[seconds]");
  if (anchor === undefined && seconds === undefined) return null;
  if (anchor !== "created_at") {
    throw new InvalidRequestError(
      "Invalid `expires_after[anchor]`: the only anchor is `created_at`.",
      "expires_after.anchor",
      anchor === undefined ? "missing_required_parameter" : "invalid_value",
    );
  }
  const n = seconds !== undefined && /^\d{1,9}$/.test(seconds) ? Number(seconds) : Number.NaN;
  if (!(n >= MIN_EXPIRY_SECONDS && n <= MAX_EXPIRY_SECONDS)) {
    throw new InvalidRequestError(
      `Invalid \`expires_after[seconds]\`: expected whole seconds from ${MIN_EXPIRY_SECONDS} (1 hour) to ${MAX_EXPIRY_SECONDS} (30 days).`,
      "expires_after.seconds",
      seconds === undefined ? "missing_required_parameter" : "invalid_value",
    );
  }
  return n;
}

/** The file name as given, without folders or control characters; `upload.jsonl` when none. */
function sanitizeFilename(name: string | undefined): string {
  const base = [...((name ?? "").split(/[\\/]/).pop() ?? "")]
    .filter((c) => c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) !== 0x7f)
    .join("")
    .trim();
  return base.slice(0, 255) || "upload.jsonl";
}
