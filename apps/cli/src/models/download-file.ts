import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, rm, stat } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { PullError } from "./errors.js";
import { networkError, type HfClient, type RemoteFile } from "./hf-client.js";

/** What a pull reports while it runs. */
export interface PullProgress {
  /** A file starts (or resumes at `from` bytes). */
  start(name: string, total: number | null, from: number): void;
  /** The size became known from the download's answer (the server gave none before). */
  resize?(total: number): void;
  /** `done` bytes of the current file are on disk. */
  advance(done: number): void;
  /** The current file is complete. */
  finish(): void;
  /** A note such as a resume after a dropped connection. */
  note(message: string): void;
}

export interface DownloadOptions {
  client: HfClient;
  progress: PullProgress;
  /**
   * Retries, each resuming where the last stopped, after a dropped connection or a 5xx.
   * @defaultValue 4
   */
  retries?: number;
  /** @defaultValue 1000 (times the attempt number) */
  retryDelayMs?: number;
}

export interface Downloaded {
  /** Bytes on disk. */
  size: number;
  /** sha256 of the whole file (the resumed part included). */
  sha256: string;
}

/** Hashes what a partial file already holds; returns its size (0 when there is none). */
async function hashExisting(path: string, hash: Hash): Promise<number> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw error;
  }
  // Only the bytes stat saw: the file cannot grow under the hash (or never end, if it is a device).
  if (size > 0) for await (const chunk of createReadStream(path, { end: size - 1 })) hash.update(chunk as Buffer);
  return size;
}

/** A stopped transfer that a retry may resume. */
class Interrupted extends Error {}

function isDiskFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}

/**
 * Downloads `file` into `partPath`, appending to what an earlier, interrupted pull left
 * there (a `Range` request). A dropped connection is resumed up to `retries` times; past
 * that a PullError `interrupted` keeps the partial file for the next pull. A full disk
 * removes it. The caller verifies the returned sha256 and renames the file.
 */
export async function downloadFile(file: RemoteFile, partPath: string, options: DownloadOptions): Promise<Downloaded> {
  const { client, progress } = options;
  const retries = options.retries ?? 4;
  const retryDelayMs = options.retryDelayMs ?? 1000;
  let hash = createHash("sha256");
  let offset = await hashExisting(partPath, hash);
  let total = file.size;
  if (total !== null && offset > total) {
    await rm(partPath, { force: true });
    hash = createHash("sha256");
    offset = 0;
  }
  progress.start(file.name, total, offset);
  let failures = 0;
  for (;;) {
    if (total !== null && offset === total) break;
    const controller = new AbortController();
    let timer = setTimeout(() => controller.abort(), client.timeoutMs);
    const handle = await open(partPath, "a");
    try {
      let followed;
      try {
        followed = await client.request(file.url, {
          method: "GET",
          ...(offset > 0 ? { range: `bytes=${offset}-` } : {}),
          signal: controller.signal,
        });
      } catch (error) {
        if (error instanceof PullError) throw error;
        throw new Interrupted("no answer", { cause: networkError(error, file.name, file.url) });
      }
      const { response } = followed;
      if (response.status >= 500) {
        await response.body?.cancel().catch(() => undefined);
        throw new Interrupted(`HTTP ${response.status}`);
      }
      if (response.status === 416 && offset > 0) {
        // The partial file does not fit what the server has now: start over.
        await response.body?.cancel().catch(() => undefined);
        await handle.truncate(0);
        hash = createHash("sha256");
        offset = 0;
        throw new Interrupted("the server refused to resume");
      }
      if (!response.ok) throw await client.failure(response, file.name);
      if (offset > 0 && response.status !== 206) {
        // The server ignored the range: start over.
        await handle.truncate(0);
        hash = createHash("sha256");
        offset = 0;
        progress.note(`${file.name}: the server cannot resume; downloading from the start`);
      } else if (response.status === 206) {
        const range = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(response.headers.get("content-range") ?? "");
        if (!range || Number(range[1]) !== offset) {
          await response.body?.cancel().catch(() => undefined);
          throw new PullError(
            "http",
            `${file.name}: the server answered another range than asked (${range?.[0] ?? "none"})`,
          );
        }
        if (total === null && range[2] !== "*") total = Number(range[2]);
      }
      if (total === null) {
        const length = Number(response.headers.get("content-length") ?? NaN);
        if (Number.isSafeInteger(length)) total = offset + length;
      }
      if (total !== null && file.size === null) progress.resize?.(total);
      const reader = response.body?.getReader();
      if (!reader) throw new Interrupted("empty body");
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          clearTimeout(timer);
          timer = setTimeout(() => controller.abort(), client.timeoutMs);
          hash.update(value);
          await handle.write(value);
          offset += value.length;
          progress.advance(offset);
        }
      } catch (error) {
        if (isDiskFull(error) || error instanceof PullError) throw error;
        throw new Interrupted("connection lost", { cause: error });
      }
      if (total === null) {
        total = offset; // no length given: the end of the body is the end of the file
      } else if (offset < total) {
        throw new Interrupted("connection closed early");
      } else if (offset > total) {
        throw new PullError(
          "http",
          `${file.name}: the server sent ${offset} bytes, more than the ${total} it announced`,
        );
      }
      await handle.sync();
    } catch (error) {
      if (isDiskFull(error)) {
        await handle.close().catch(() => undefined);
        await rm(partPath, { force: true });
        throw new PullError("disk_full", `${file.name}: the disk filled up at ${offset} bytes`, {
          hint: "free some space, or set CORRAL_MODELS_DIR (--models-dir) to a folder on a bigger disk",
          cause: error,
        });
      }
      if (!(error instanceof Interrupted)) throw error;
      failures++;
      if (failures > retries) {
        throw new PullError(
          "interrupted",
          `${file.name}: the download stopped at ${offset}${total === null ? "" : ` of ${total}`} bytes after ${failures} tries (${error.message})`,
          { hint: "run the same `corral models pull` again: it resumes from the partial file", cause: error },
        );
      }
      progress.note(
        `${file.name}: ${error.message} at ${offset} bytes; resuming (try ${failures + 1} of ${retries + 1})`,
      );
      await sleep(retryDelayMs * failures);
      continue;
    } finally {
      clearTimeout(timer);
      await handle.close().catch(() => undefined);
    }
    break;
  }
  progress.finish();
  return { size: offset, sha256: hash.digest("hex") };
}
