import type { Logger } from "pino";
import type { FileService } from "./file-service.js";

export interface FileSweeperOptions {
  files: FileService;
  logger: Logger;
  /** How often to sweep; 0: never. @defaultValue 600000 (10 min) */
  intervalMs?: number;
  /** Unregistered content older than this is deleted. @defaultValue 3600000 (1 h) */
  orphanAgeMs?: number;
}

/**
 * Keeps the file store from filling up: every `intervalMs` it deletes expired files
 * (`expires_at` passed) and content no metadata names (an upload cut short, a crash between
 * writing and registering). Safe to run on every scheduler at once.
 */
export class FileSweeper {
  readonly #o: Required<FileSweeperOptions>;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #closed = false;

  constructor(options: FileSweeperOptions) {
    this.#o = { intervalMs: 600_000, orphanAgeMs: 3_600_000, ...options };
    if (this.#o.intervalMs < 0 || this.#o.orphanAgeMs < 0) throw new RangeError("intervals must not be negative");
  }

  start(): void {
    if (this.#closed || this.#timer !== null || this.#o.intervalMs === 0) return;
    this.#timer = setInterval(() => {
      this.#running ??= this.sweep().finally(() => (this.#running = null));
    }, this.#o.intervalMs);
    this.#timer.unref();
  }

  /** One sweep; errors are logged, never thrown. */
  async sweep(): Promise<void> {
    try {
      const expired = await this.#o.files.removeExpired();
      const orphans = await this.#o.files.removeOrphans(this.#o.orphanAgeMs);
      if (expired + orphans > 0) this.#o.logger.info({ expired, orphans }, "file sweep");
    } catch (error) {
      this.#o.logger.warn({ err: error }, "file sweep failed");
    }
  }

  /** Stops the timer and waits for a sweep in progress. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }
}
