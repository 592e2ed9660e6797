import { createReadStream, createWriteStream, type ReadStream } from "node:fs";
import { link, mkdir, rename, rm, stat, copyFile } from "node:fs/promises";
import { join } from "node:path";
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { InvalidRequestError, PayloadTooLargeError } from "@corral/shared";

export interface FileStoreOptions {
  /** Folder the files live in (created when missing). A shared volume when several schedulers run. */
  dir: string;
}

/** Limits a write enforces while it streams. */
export interface WriteLimits {
  /** Most bytes; more is a 413. @defaultValue unlimited */
  maxBytes?: number;
  /** Most lines; more is a 400. @defaultValue unlimited */
  maxLines?: number;
}

/** What a finished write stored. */
export interface WrittenFile {
  bytes: number;
  /** Newline-terminated lines, plus a last line without a newline. */
  lines: number;
}

/** A write stopped because the content passed a limit (`kind` says which). */
export class FileLimitError extends Error {
  override readonly name = "FileLimitError";
  constructor(
    readonly kind: "bytes" | "lines",
    readonly limit: number,
  ) {
    super(`the file passed the limit of ${limit} ${kind}`);
  }
}

/** Turns a FileLimitError into the HTTP error the API answers with. */
export function limitErrorToHttp(error: FileLimitError): Error {
  return error.kind === "bytes"
    ? new PayloadTooLargeError(
        `The file is larger than the limit of ${error.limit} bytes (CORRAL_MAX_FILE_BYTES). Split it into smaller files.`,
      )
    : new InvalidRequestError(
        `The file has more than the limit of ${error.limit} lines (CORRAL_MAX_FILE_LINES). Split it into smaller files.`,
        "file",
        "too_many_lines",
      );
}

/** Counts bytes and lines as they pass, and fails the stream as soon as a limit is passed. */
class CountingLimiter extends Transform {
  bytes = 0;
  newlines = 0;
  lastByte = -1;
  constructor(private readonly limits: WriteLimits) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.limits.maxBytes !== undefined && this.bytes > this.limits.maxBytes) {
      callback(new FileLimitError("bytes", this.limits.maxBytes));
      return;
    }
    let at = chunk.indexOf(0x0a);
    while (at >= 0) {
      this.newlines++;
      at = chunk.indexOf(0x0a, at + 1);
    }
    if (chunk.length > 0) this.lastByte = chunk[chunk.length - 1]!;
    if (this.limits.maxLines !== undefined && this.lines > this.limits.maxLines) {
      callback(new FileLimitError("lines", this.limits.maxLines));
      return;
    }
    callback(null, chunk);
  }
  get lines(): number {
    return this.newlines + (this.bytes > 0 && this.lastByte !== 0x0a ? 1 : 0);
  }
}

/**
 * The file store: one plain file per id in a local folder. Writes stream through a
 * counter that enforces the limits, into `<id>.part`, renamed into place only when the
 * whole content arrived; a failed or over-limit write leaves nothing behind.
 */
export class FileStore {
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  #made: Promise<unknown> | null = null;

  /** A store on `options.dir`; the folder is created on the first write. */
  static async create(options: FileStoreOptions): Promise<FileStore> {
    return new FileStore(options.dir);
  }

  /** The path of a stored file. Ids are checked by the callers (`file-…`, `batch_…`). */
  path(id: string): string {
    if (!/^[A-Za-z0-9_.-]{1,128}$/.test(id) || id.startsWith(".")) throw new Error(`unsafe file store id ${id}`);
    return join(this.dir, id);
  }

  /**
   * Streams `source` into the file `id`, enforcing `limits` as it goes.
   * @throws FileLimitError when a limit is passed (the partial file is removed).
   */
  async write(
    id: string,
    source: Readable | AsyncIterable<Buffer | string>,
    limits: WriteLimits = {},
  ): Promise<WrittenFile> {
    const final = this.path(id);
    const partial = `${final}.part`;
    const counter = new CountingLimiter(limits);
    this.#made ??= mkdir(this.dir, { recursive: true }).catch((error: unknown) => {
      this.#made = null;
      throw error;
    });
    try {
      await this.#made;
      await pipeline(source, counter, createWriteStream(partial, { flags: "w" }));
      await rename(partial, final);
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
    return { bytes: counter.bytes, lines: counter.lines };
  }

  /** A read stream of the file from byte `start`. */
  open(id: string, start = 0): ReadStream {
    return createReadStream(this.path(id), { start, highWaterMark: 256 * 1024 });
  }

  /** Size in bytes, or null when the file is missing. */
  async size(id: string): Promise<number | null> {
    try {
      return (await stat(this.path(id))).size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw error;
    }
  }

  /**
   * Makes `to` a second name of `from`: a hard link (instant, no copy), or a copy where
   * the file system has no hard links. Deleting `from` later leaves `to` whole.
   */
  async link(from: string, to: string): Promise<void> {
    const target = this.path(to);
    await rm(target, { force: true });
    try {
      await link(this.path(from), target);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "EPERM" && code !== "EXDEV" && code !== "ENOTSUP" && code !== "EOPNOTSUPP") throw error;
      await copyFile(this.path(from), target);
    }
  }

  /** Removes the file; a missing file is fine. */
  async remove(id: string): Promise<void> {
    await rm(this.path(id), { force: true });
  }
}
