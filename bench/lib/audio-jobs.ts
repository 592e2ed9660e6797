import { randomUUID } from "node:crypto";
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import {
  FairQueue,
  HOLD_DELAY_MS,
  JobRecords,
  bullPriority,
  laneName,
  queuedJobRecord,
  type CatalogModel,
  type JobPayload,
  type RedisKeys,
} from "@corral/shared";

/**
 * Queues audio jobs into Redis as the scheduler does for native jobs (record, the upload's
 * bytes at `RedisKeys.audio(id)`, the lane, the BullMQ job held for fair claim; native:
 * no interactive lease to keep), for benchmarks that measure the worker without the HTTP layer.
 */
export class AudioJobs {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #records: JobRecords;
  readonly #fair: FairQueue;
  readonly #queues = new Map<string, Queue<JobPayload>>();

  constructor(redis: Redis, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
    this.#records = new JobRecords(redis, keys);
    this.#fair = new FairQueue(redis, keys);
  }

  /** Adds `model` to the published catalog (as the scheduler's scan does for a ggml `.bin`). */
  async publishModel(model: CatalogModel): Promise<void> {
    await this.#redis
      .multi()
      .set(this.#keys.catalog, JSON.stringify({ models: [model], updated_at: Date.now() }))
      .set(this.#keys.catalogVersion, randomUUID())
      .exec();
  }

  /** Queues one transcription of `audio` (`seconds` long); returns its id. */
  async submit(model: CatalogModel, audio: Buffer, filename: string, seconds: number): Promise<string> {
    const id = `bench_audio_${randomUUID()}`;
    const now = Date.now();
    const key = this.#keys.audio(id);
    const fairCost = Math.ceil(seconds * 10);
    const payload: JobPayload = {
      id,
      tenant: "bench",
      model: model.id,
      file: model.file,
      source: "native",
      kind: "transcription",
      language: "en",
      audio: { key, bytes: audio.length, seconds, filename },
      max_tokens: 1,
      temperature: 0,
      stream: true,
      requirement_bytes: model.requirement_bytes,
      fair_cost: fairCost,
      created_at: now,
    };
    const lane = laneName(model.id);
    await this.#redis.set(key, audio, "EX", 3600);
    await this.#records.create(
      queuedJobRecord({ id, tenant: "bench", model: model.id, source: "native", priority: 50, created_at: now }),
    );
    await this.#redis.sadd(this.#keys.lanes, lane);
    await this.#queue(lane).add("transcription", payload, {
      jobId: id,
      delay: HOLD_DELAY_MS,
      attempts: 1,
      removeOnComplete: { age: 3600 },
      removeOnFail: { age: 3600 },
    });
    await this.#fair.hold(lane, [
      { id, tenant: "bench", weight: 1, priority: bullPriority("native", 50), createdAt: now, cost: fairCost },
    ]);
    return id;
  }

  #queue(lane: string): Queue<JobPayload> {
    let queue = this.#queues.get(lane);
    if (!queue) {
      queue = new Queue<JobPayload>(lane, { connection: this.#redis, prefix: this.#keys.prefix });
      this.#queues.set(lane, queue);
    }
    return queue;
  }

  async close(): Promise<void> {
    for (const queue of this.#queues.values()) await queue.close();
  }
}
