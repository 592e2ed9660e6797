import { readdirSync, statSync } from "node:fs";
import { readFile, symlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  FairQueue,
  HOLD_DELAY_MS,
  bullPriority,
  laneName,
  queuedJobRecord,
  type Catalog,
  type CatalogModel,
  type JobPayload,
  type JobRecord,
} from "@corral/shared";
import { audioFixturesDir, sharedModelsDir } from "../../support/models.js";
import type { Harness } from "./harness.js";

/** whisper.cpp's test model: the real tiny.en vocabulary, no weights (it transcribes nothing). */
export const WHISPER_TEST_FILE = "for-tests-ggml-tiny.en.bin";
/** The multilingual one (translation, language detection). */
export const WHISPER_TEST_MULTI_FILE = "for-tests-ggml-tiny.bin";
/** JFK's "ask not" (11.0 s), as wav (16 kHz mono PCM) and mp3. */
export const JFK_SECONDS = 11;
export const JFK_REFERENCE =
  "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";

export const whisperModelsDir = (): string => join(sharedModelsDir(), "whisper");
export const audioFixture = (name: "jfk.wav" | "jfk.mp3"): string => resolve(audioFixturesDir(), name);

/**
 * A trained Whisper model in the shared models folder (any ggml `.bin` there that is not
 * whisper.cpp's `for-tests-*`, e.g. `ggml-tiny.en.bin`), or null when there is none.
 */
export function trainedWhisperModel(): string | null {
  const dir = whisperModelsDir();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return null;
  }
  const trained = names
    .filter((name) => name.endsWith(".bin") && !name.startsWith("for-tests-"))
    .filter((name) => statSync(join(dir, name)).size > 10 * 1024 * 1024)
    .sort();
  return trained[0] === undefined ? null : join(dir, trained[0]);
}

/**
 * Links a Whisper model into the harness's models folder and adds it to the published
 * catalog as a `kind: "whisper"` model (what the scheduler's scan does for `.bin` files),
 * with a small requirement unless `overrides` set one.
 */
export async function publishWhisperModel(
  h: Harness,
  id: string,
  source: string,
  overrides: Partial<CatalogModel> = {},
): Promise<CatalogModel> {
  const file = `${id}.bin`;
  await symlink(source, join(h.modelsDir, file));
  const model: CatalogModel = {
    id,
    aliases: [],
    kind: "whisper",
    file,
    file_size_bytes: statSync(source).size,
    architecture: "whisper",
    parameters: 0,
    layers: 4,
    train_context_size: 448,
    context_size: 448,
    sequences: 1,
    embedding_length: null,
    has_chat_template: false,
    estimated_vram_bytes: 64 * 1024 * 1024,
    estimated_ram_bytes: 64 * 1024 * 1024,
    vram_override_bytes: null,
    requirement_bytes: 64 * 1024 * 1024,
    placement: null,
    created_at: Date.now(),
    ...overrides,
  };
  const raw = await h.redis.get(h.keys.catalog);
  const catalog: Catalog = raw === null ? { models: [], updated_at: 0 } : (JSON.parse(raw) as Catalog);
  catalog.models = [...catalog.models.filter((m) => m.id !== id), model];
  catalog.updated_at = Date.now();
  await h.redis
    .multi()
    .set(h.keys.catalog, JSON.stringify(catalog))
    .set(h.keys.catalogVersion, `whisper-${Date.now()}-${Math.random()}`)
    .exec();
  return model;
}

export interface AudioJobInput {
  model: CatalogModel;
  /** A fixture path. */
  file: string;
  kind?: "transcription" | "translation";
  language?: string;
  prompt?: string;
  stream?: boolean;
  attempts?: number;
  tenant?: string;
  /** Seconds of TTL on the stored audio. @defaultValue 3600 */
  audioTtlSeconds?: number;
  /** Store no audio (as if its TTL ran out). */
  withoutAudio?: boolean;
}

let counter = 0;

/**
 * Queues a transcription job as the scheduler does for the native API (no interactive
 * lease to keep, which only an open OpenAI request has): the record (queued), the uploaded
 * bytes at `RedisKeys.audio(id)` with a TTL, the lane in the lanes set, the BullMQ job
 * held for fair claim at a cost of the audio's seconds.
 */
export async function submitAudio(h: Harness, input: AudioJobInput): Promise<JobRecord> {
  const now = Date.now();
  const id = `job_${h.prefix}_audio_${++counter}`;
  const kind = input.kind ?? "transcription";
  const tenant = input.tenant ?? "test";
  const bytes = await readFile(input.file);
  const key = h.keys.audio(id);
  const fairCost = JFK_SECONDS * 10;
  const payload: JobPayload = {
    id,
    tenant,
    model: input.model.id,
    file: input.model.file,
    source: "native",
    kind,
    ...(input.prompt === undefined ? {} : { prompt: input.prompt }),
    ...(input.language === undefined ? {} : { language: input.language }),
    audio: { key, bytes: bytes.length, seconds: JFK_SECONDS, filename: input.file.split("/").pop()! },
    max_tokens: 1,
    temperature: 0,
    stream: input.stream ?? true,
    requirement_bytes: input.model.requirement_bytes,
    fair_cost: fairCost,
    created_at: now,
  };
  if (!input.withoutAudio) await h.redis.set(key, bytes, "EX", input.audioTtlSeconds ?? 3600);
  const record = queuedJobRecord({
    id,
    tenant,
    model: input.model.id,
    source: "native",
    priority: 50,
    created_at: now,
  });
  await h.records.create(record);
  const lane = laneName(input.model.id);
  await h.redis.sadd(h.keys.lanes, lane);
  await h.queue(input.model.id).add(kind, payload, {
    jobId: id,
    delay: HOLD_DELAY_MS,
    attempts: input.attempts ?? 3,
    backoff: { type: "exponential", delay: 200 },
    removeOnComplete: { age: 3600 },
    removeOnFail: { age: 3600 },
  });
  await new FairQueue(h.redis, h.keys).hold(lane, [
    { id, tenant, weight: 1, priority: bullPriority("native", 50), createdAt: now, cost: fairCost },
  ]);
  return record;
}

/** Word error rate of `hypothesis` against `reference`: word edits over reference words (case and punctuation ignored). */
export function wordErrorRate(reference: string, hypothesis: string): number {
  const words = (text: string) =>
    text
      .toLowerCase()
      .replace(/[^a-z0-9' ]+/g, " ")
      .split(/\s+/)
      .filter((w) => w !== "");
  const ref = words(reference);
  const hyp = words(hypothesis);
  let previous = Array.from({ length: hyp.length + 1 }, (_, j) => j);
  for (let i = 1; i <= ref.length; i++) {
    const current = [i];
    for (let j = 1; j <= hyp.length; j++) {
      const substitution = previous[j - 1]! + (ref[i - 1] === hyp[j - 1] ? 0 : 1);
      current.push(Math.min(substitution, previous[j]! + 1, current[j - 1]! + 1));
    }
    previous = current;
  }
  return ref.length === 0 ? 0 : previous[hyp.length]! / ref.length;
}
