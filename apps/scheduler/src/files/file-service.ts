import { readdir, stat } from "node:fs/promises";
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
  /** Most bytes of files one tenant may store (uploads past it are a 413). @defaultValue 10 GiB */
  maxTenantBytes?: number;
  /** Batch output and error files expire this long after they are written (0: never). @defaultValue 30 days */
  outputTtlMs?: number;
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
  /** Seconds after creation the file expires; null: never. @defaultValue never for uploads, {@link FileServiceOptions.outputTtlMs} for batch output */
  expiresAfterSeconds?: number | null;
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
  data: FileObjectBody[];
  has_more: boolean;
  first_id: string | null;
  last_id: string | null;
}

/**
 * A file object as clients see it: OpenAI's schema has no `null` for `expires_at` and
 * `status_details`, so an unset one is left out rather than sent as null.
 */
export type FileObjectBody = Omit<FileObject, "expires_at" | "status_details"> & {
  expires_at?: number;
  status_details?: string;
};

/** The file object clients see: the stored metadata without Corral's own fields, and without null keys. */
export function toFileObject(file: StoredFile): FileObjectBody {
  const { tenant: _tenant, lines: _lines, expires_at, status_details, ...object } = file;
  return {
    ...object,
    ...(expires_at !== null ? { expires_at } : {}),
    ...(status_details !== null ? { status_details } : {}),
  };
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
  readonly maxTenantBytes: number;
  readonly outputTtlMs: number;
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #logger: Logger;
  readonly #clock: () => number;

  constructor(options: FileServiceOptions) {
    this.store = options.store;
    this.maxBytes = options.maxBytes ?? 200 * 1024 * 1024;
    this.maxLines = options.maxLines ?? 1_000_000;
    this.maxTenantBytes = options.maxTenantBytes ?? 10 * 1024 ** 3;
    this.outputTtlMs = options.outputTtlMs ?? 30 * 24 * 3600 * 1000;
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
    return this.register(tenant, {
      id,
      filename: file.filename,
      purpose: file.purpose,
      ...written,
      ...(file.expiresAfterSeconds !== undefined ? { expiresAfterSeconds: file.expiresAfterSeconds } : {}),
    });
  }

  /** The limits uploads get. */
  get uploadLimits(): WriteLimits {
    return { maxBytes: this.maxBytes, maxLines: this.maxLines };
  }

  /** Bytes of files `tenant` stores now (counted as files are registered and deleted). */
  async usedBytes(tenant: string): Promise<number> {
    return Math.max(0, Number((await this.#redis.hget(this.#keys.fileBytes, tenant)) ?? 0));
  }

  /**
   * Records the metadata of content already in the store under `file.id`; removes the content if that fails.
   * `expiresAfterSeconds` defaults to never for uploads and to `outputTtlMs` for batch output.
   */
  async register(
    tenant: string,
    file: {
      id: string;
      filename: string;
      purpose: FilePurpose;
      bytes: number;
      lines: number;
      expiresAfterSeconds?: number | null;
    },
  ): Promise<StoredFile> {
    const now = this.#clock();
    const createdAt = Math.floor(now / 1000);
    const after =
      file.expiresAfterSeconds !== undefined
        ? file.expiresAfterSeconds
        : file.purpose === "batch_output" && this.outputTtlMs > 0
          ? Math.ceil(this.outputTtlMs / 1000)
          : null;
    const expiresAt = after === null ? null : createdAt + after;
    const stored: StoredFile = {
      id: file.id,
      object: "file",
      bytes: file.bytes,
      created_at: createdAt,
      filename: file.filename,
      purpose: file.purpose,
      status: "processed",
      status_details: null,
      expires_at: expiresAt,
      tenant,
      lines: file.lines,
    };
    try {
      const multi = this.#redis
        .multi()
        .set(this.#keys.file(file.id), JSON.stringify(stored))
        .zadd(this.#keys.tenantFiles(tenant), now, file.id)
        .hincrby(this.#keys.fileBytes, tenant, file.bytes);
      if (expiresAt !== null) multi.zadd(this.#keys.fileExpiry, expiresAt * 1000, file.id);
      await multi.exec();
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
    const expired = file?.expires_at != null && file.expires_at * 1000 <= this.#clock();
    if (!file || file.tenant !== tenant || expired) {
      throw new NotFoundError(`No file with id ${id}.`, param, "file_not_found");
    }
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
    const data: FileObjectBody[] = [];
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
    await this.#delete(file);
    this.#logger.info({ file_id: id, tenant: file.tenant }, "file deleted");
    return { id, object: "file", deleted: true };
  }

  /** Deletes files whose `expires_at` has passed. Returns how many. */
  async removeExpired(): Promise<number> {
    const ids = await this.#redis.zrangebyscore(this.#keys.fileExpiry, "-inf", this.#clock(), "LIMIT", 0, 1000);
    let removed = 0;
    for (const id of ids) {
      const file = await this.find(id);
      if (file) {
        await this.#delete(file);
        removed++;
        this.#logger.info({ file_id: id, tenant: file.tenant }, "expired file deleted");
      } else {
        await this.#redis.zrem(this.#keys.fileExpiry, id);
      }
    }
    return removed;
  }

  /**
   * Deletes content in the store that no file's metadata names: `file-…` files and partial
   * writes (`.part`) not modified for `olderThanMs` (a write in progress keeps its partial
   * file fresh). Batch input copies are the batches' to remove. Returns how many.
   */
  async removeOrphans(olderThanMs: number): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.store.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
      throw error;
    }
    const cutoff = this.#clock() - olderThanMs;
    let removed = 0;
    for (const name of names) {
      const partial = name.endsWith(".part");
      const id = partial ? name.slice(0, -".part".length) : name;
      if (!partial && !id.startsWith("file-")) continue;
      try {
        if ((await stat(this.store.path(id) + (partial ? ".part" : ""))).mtimeMs > cutoff) continue;
        if (!partial && (await this.#redis.exists(this.#keys.file(id))) === 1) continue;
        await this.store.remove(partial ? name : id);
        removed++;
        this.#logger.info({ file: name }, "unregistered file deleted");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
        // An unsafe name (not one Corral writes) is left alone.
        if (error instanceof Error && error.message.startsWith("unsafe file store id")) continue;
        throw error;
      }
    }
    return removed;
  }

  /** Deletes the file's metadata (and its quota use, once) and its content. */
  async #delete(file: StoredFile): Promise<void> {
    const deleted = await this.#redis.del(this.#keys.file(file.id));
    const multi = this.#redis
      .multi()
      .zrem(this.#keys.tenantFiles(file.tenant), file.id)
      .zrem(this.#keys.fileExpiry, file.id);
    if (deleted === 1) multi.hincrby(this.#keys.fileBytes, file.tenant, -file.bytes);
    await multi.exec();
    await this.store.remove(file.id);
  }
}

function page(data: FileObjectBody[], has_more: boolean): FilePage {
  return { object: "list", data, has_more, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
}
