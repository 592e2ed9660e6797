import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { RedisKeys } from "@corral/shared";
import type { AudioBudget } from "./audio-budget.js";
import type { AudioUpload } from "./types.js";

/** How long a queued transcription's audio is kept by default: one hour (`CORRAL_AUDIO_TTL`). */
export const DEFAULT_AUDIO_TTL_MS = 3_600_000;

export interface AudioStoreOptions {
  redis: Redis;
  keys: RedisKeys;
  /** Expiry of each stored upload, ms. */
  ttlMs: number;
  /** @defaultValue none (audio seconds are not counted) */
  budget?: AudioBudget;
  logger: Logger;
}

/**
 * The uploads of transcription and translation jobs, kept in Redis as they came (a string at
 * {@link RedisKeys.audio}, with a TTL) from before the job is queued until its worker ends it.
 */
export class AudioStore {
  readonly #o: AudioStoreOptions;

  constructor(options: AudioStoreOptions) {
    if (!(options.ttlMs >= 1000)) throw new RangeError(`ttlMs must be at least 1000 (got ${options.ttlMs})`);
    this.#o = options;
  }

  /**
   * Counts the upload's seconds against the tenant's day (429 past its budget), then stores
   * it for job `id`. Returns what undoes both (for a job that was then not queued).
   */
  async put(tenant: string, id: string, audio: AudioUpload): Promise<() => Promise<void>> {
    const release = (await this.#o.budget?.reserve(tenant, audio.seconds)) ?? (async () => {});
    try {
      await this.#o.redis.set(this.#o.keys.audio(id), audio.data, "PX", this.#o.ttlMs);
    } catch (error) {
      await release().catch(() => undefined);
      throw error;
    }
    return async () => {
      await this.remove(id);
      await release();
    };
  }

  /** Deletes job `id`'s upload (none: nothing happens). Never throws; a failure is logged and the key expires. */
  async remove(id: string): Promise<void> {
    try {
      await this.#o.redis.del(this.#o.keys.audio(id));
    } catch (error) {
      this.#o.logger.warn({ err: error, job_id: id }, "could not delete a job's audio; it expires with its TTL");
    }
  }
}
