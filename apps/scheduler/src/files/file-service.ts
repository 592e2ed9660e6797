import type { Readable } from "node:stream";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { NotFoundError, StoredFile, type FileObject, type FilePurpose, type RedisKeys } from "@corral/shared";
import { assertFileId, newFileId } from "./file-id.js";
import type { FileStore, WriteLimits } from "./file-store.js";

export interface FileServiceOptions {
  redis: Redis;
  keys: RedisKeys;
  store: FileStore;
  logger: Logger;
  /** Largest upload in bytes. @defaultValue 200 MB */
  maxBytes?: number;
  /** Most lines in an upload. @defaultValue 1000000 */
  maxLines?: number;
  /** @defaultValue Date.now */
  clock?: () => number;
}

/** What {@link FileService.create} writes. */
export interface NewFile {
  filename: string;
  purpose: FilePurpose;
  content: Readable | AsyncIterable<Buffer | string>;
  /** The id to store under. @defaultValue a new `file-…` id */
  id?: string;
  /** @defaultValue the upload limits for `batch` files, none for generated ones */
  limits?: WriteLimits;
}

export interface ListFilesOptions {
  purpose?: FilePurpose;
  /** @defaultValue 100 */
  limit?: number;
  /** A file id: list the files after it in `order`. */
  after?: string;
  /** By creation time. @defaultValue "desc" */
  order?: "asc" | "desc";
}

/** A page of files, in OpenAI's list shape. */
export interface FilePage {
  object: "list";
  data: FileObject[];
  has_more: boolean;
  first_id: string | null;
  last_id: string | null;
}

/** The file object clients see: the stored metadata without Corral's own fields. */
export function toFileObject(file: StoredFile): FileObject {
  const { tenant: _tenant, lines: _lines, ...object } = file;
  return object;
}

/**
 * Files (`/v1/files`): content in the {@link FileStore}, metadata in Redis as JSON under
 * `file:<id>`, plus a per-tenant sorted set for listing. Every method that takes a tenant
 * sees only that tenant's files; another tenant's file is "not found".
 */
export class FileService {
  readonly store: FileStore;
  readonly maxBytes: number;
  readonly maxLines: number;
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #logger: Logger;
  readonly #clock: () => number;

  constructor(options: FileServiceOptions) {
    this.store = options.store;
    this.maxBytes = options.maxBytes ?? 200 * 1024 * 1024;
    this.maxLines = options.maxLines ?? 1_000_000;
    this.#redis = options.redis;
    this.#keys = options.keys;
    this.#logger = options.logger;
    this.#clock = options.clock ?? Date.now;
  }

  /**
   * Streams `file.content` into the store, then records its metadata for `tenant`.
   * @throws FileLimitError when the content passes the byte or line limit (nothing is kept).
   */
  async create(tenant: string, file: NewFile): Promise<StoredFile> {
    const id = file.id ?? newFileId();
    const limits = file.limits ?? (file.purpose === "batch" ? this.uploadLimits : {});
    const written = await this.store.write(id, file.content, limits);
    return this.register(tenant, { id, filename: file.filename, purpose: file.purpose, ...written });
  }

  /** The limits uploads get. */
  get uploadLimits(): WriteLimits {
    return { maxBytes: this.maxBytes, maxLines: this.maxLines };
  }

  /** Records the metadata of content already in the store under `file.id`; removes the content if that fails. */
  async register(
    tenant: string,
    file: { id: string; filename: string; purpose: FilePurpose; bytes: number; lines: number },
  ): Promise<StoredFile> {
    const now = this.#clock();
    const stored: StoredFile = {
      id: file.id,
      object: "file",
      bytes: file.bytes,
      created_at: Math.floor(now / 1000),
      filename: file.filename,
      purpose: file.purpose,
      status: "processed",
      status_details: null,
      expires_at: null,
      tenant,
      lines: file.lines,
    };
    try {
      await this.#redis
        .multi()
        .set(this.#keys.file(file.id), JSON.stringify(stored))
        .zadd(this.#keys.tenantFiles(tenant), now, file.id)
        .exec();
    } catch (error) {
      await this.store.remove(file.id).catch(() => undefined);
      throw error;
    }
    this.#logger.info(
      { file_id: file.id, tenant, bytes: file.bytes, lines: file.lines, purpose: file.purpose },
      "file stored",
    );
    return stored;
  }

  /** The file's metadata whoever owns it, or null. */
  async find(id: string): Promise<StoredFile | null> {
    const raw = await this.#redis.get(this.#keys.file(id));
    return raw === null ? null : StoredFile.parse(JSON.parse(raw));
  }

  /** The tenant's file. @throws NotFoundError when absent or another tenant's. */
  async get(tenant: string, id: string, param = "file_id"): Promise<StoredFile> {
    assertFileId(id, param);
    const file = await this.find(id);
    if (!file || file.tenant !== tenant) throw new NotFoundError(`No file with id ${id}.`, param, "file_not_found");
    return file;
  }

  /** The tenant's file and a stream of its content. */
  async open(tenant: string, id: string): Promise<{ file: StoredFile; content: Readable }> {
    const file = await this.get(tenant, id);
    return { file, content: this.store.open(id) };
  }

  /** The tenant's files, newest first unless `order` is "asc". */
  async list(tenant: string, options: ListFilesOptions = {}): Promise<FilePage> {
    const limit = options.limit ?? 100;
    const desc = (options.order ?? "desc") === "desc";
    const index = this.#keys.tenantFiles(tenant);
    let bound = desc ? "+inf" : "-inf";
    if (options.after !== undefined) {
      assertFileId(options.after, "after");
      const score = await this.#redis.zscore(index, options.after);
      if (score === null) return page([], false);
      bound = `(${score}`;
    }
    const data: FileObject[] = [];
    let offset = 0;
    const chunk = Math.max(limit + 1, 50);
    for (;;) {
      const ids = desc
        ? await this.#redis.zrevrangebyscore(index, bound, "-inf", "LIMIT", offset, chunk)
        : await this.#redis.zrangebyscore(index, bound, "+inf", "LIMIT", offset, chunk);
      if (ids.length === 0) return page(data, false);
      offset += ids.length;
      const raws = await this.#redis.mget(ids.map((id) => this.#keys.file(id)));
      for (const raw of raws) {
        if (raw === null) continue;
        const file = StoredFile.parse(JSON.parse(raw));
        if (options.purpose !== undefined && file.purpose !== options.purpose) continue;
        if (data.length === limit) return page(data, true);
        data.push(toFileObject(file));
      }
    }
  }

  /** Deletes the tenant's file (metadata and content). */
  async remove(tenant: string, id: string): Promise<{ id: string; object: "file"; deleted: true }> {
    const file = await this.get(tenant, id);
    await this.#redis.multi().del(this.#keys.file(id)).zrem(this.#keys.tenantFiles(tenant), id).exec();
    await this.store.remove(id);
    this.#logger.info({ file_id: id, tenant: file.tenant }, "file deleted");
    return { id, object: "file", deleted: true };
  }
}

function page(data: FileObject[], has_more: boolean): FilePage {
  return { object: "list", data, has_more, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
}
