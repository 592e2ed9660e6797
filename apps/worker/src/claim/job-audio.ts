import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { JobFailureError, type JobPayload } from "@corral/shared";

/**
 * A transcription's uploaded audio was gone from Redis when the job started: its key's
 * TTL ran out while the job waited. Retrying cannot bring it back: the job fails for good.
 */
export class AudioExpiredError extends JobFailureError {
  override readonly name = "AudioExpiredError";
  readonly jobId: string;
  readonly key: string;

  constructor(jobId: string, key: string) {
    super(
      `Job ${jobId}: its audio expired before a worker could run it (the upload is kept for a limited time while the job waits); submit it again.`,
      "audio_expired",
    );
    this.jobId = jobId;
    this.key = key;
  }
}

/**
 * The uploaded audio of transcription and translation jobs, which the scheduler keeps in a
 * Redis string (`JobPayload.audio.key`, with a TTL) until the job ends. A run reads it; the
 * job's final state (succeeded, failed for good, cancelled) deletes it. A retried or
 * released job keeps it for its next run, as does a job whose slot died mid-run.
 */
export class JobAudio {
  readonly #redis: Redis;

  constructor(redis: Redis) {
    this.#redis = redis;
  }

  /** The job's audio bytes; undefined for jobs without audio. Throws AudioExpiredError when the key is gone. */
  async read(payload: JobPayload): Promise<Uint8Array | undefined> {
    if (payload.audio === undefined) return undefined;
    const bytes = await this.#redis.getBuffer(payload.audio.key);
    if (bytes === null) throw new AudioExpiredError(payload.id, payload.audio.key);
    return bytes;
  }

  /** Deletes the job's audio (its job ended). Never rejects: the key's TTL removes what a failed delete leaves. */
  async drop(payload: JobPayload | null, log: Logger): Promise<void> {
    if (payload?.audio === undefined) return;
    try {
      await this.#redis.del(payload.audio.key);
    } catch (error) {
      log.warn({ err: error }, "could not delete the job's audio; it expires with its TTL");
    }
  }
}
