import { createWriteStream, openAsBlob } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { basename } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { BatchEndpoint, BatchObject, FileObject } from "@corral/shared";
import { SchedulerHttpError } from "../client/scheduler-client.js";
import { CliError } from "../errors.js";

export interface BatchClientOptions {
  /** Base URL of the scheduler, e.g. `http://127.0.0.1:8080`. */
  url: string;
  apiKey?: string | undefined;
  /** @defaultValue the global `fetch` */
  fetch?: typeof fetch;
}

/** A page of batches as `GET /v1/batches` returns it. */
export interface BatchList {
  data: BatchObject[];
  has_more: boolean;
}

/**
 * The files and batches endpoints, for `corral batch`. Uploads stream the file from disk
 * (a file-backed Blob) and downloads stream to disk, so neither holds a file in memory.
 */
export class BatchClient {
  readonly url: string;
  readonly #apiKey: string | undefined;
  readonly #fetch: typeof fetch;

  constructor(options: BatchClientOptions) {
    this.url = options.url.replace(/\/+$/, "");
    this.#apiKey = options.apiKey;
    this.#fetch = options.fetch ?? fetch;
  }

  /** `POST /v1/files` with `purpose=batch`. */
  async uploadFile(path: string): Promise<FileObject> {
    let blob: Blob;
    try {
      blob = await openAsBlob(path);
    } catch (error) {
      throw new CliError(`cannot read ${path}: ${(error as Error).message}`, { exitCode: 2 });
    }
    const form = new FormData();
    form.append("purpose", "batch");
    form.append("file", blob, basename(path));
    return (await this.#json("POST", "/v1/files", form)) as FileObject;
  }

  async createBatch(body: {
    input_file_id: string;
    endpoint: BatchEndpoint;
    completion_window: "24h";
    metadata?: Record<string, string>;
  }): Promise<BatchObject> {
    return (await this.#json("POST", "/v1/batches", body)) as BatchObject;
  }

  async getBatch(id: string): Promise<BatchObject> {
    return (await this.#json("GET", `/v1/batches/${encodeURIComponent(id)}`)) as BatchObject;
  }

  async listBatches(options: { limit?: number; after?: string } = {}): Promise<BatchList> {
    const query = new URLSearchParams();
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    if (options.after !== undefined) query.set("after", options.after);
    const suffix = query.size > 0 ? `?${query}` : "";
    return (await this.#json("GET", `/v1/batches${suffix}`)) as BatchList;
  }

  async cancelBatch(id: string): Promise<BatchObject> {
    return (await this.#json("POST", `/v1/batches/${encodeURIComponent(id)}/cancel`)) as BatchObject;
  }

  /** Streams a file's content to `dest` (through `dest.part`, renamed when complete). Returns the bytes written. */
  async downloadFile(id: string, dest: string): Promise<number> {
    const response = await this.#send("GET", `/v1/files/${encodeURIComponent(id)}/content`);
    if (!response.ok) await this.#fail(response, "GET", `/v1/files/${id}/content`);
    if (!response.body) throw new CliError(`GET /v1/files/${id}/content: empty answer`);
    const partial = `${dest}.part`;
    let bytes = 0;
    const body = Readable.fromWeb(response.body as unknown as WebReadableStream<Uint8Array>);
    body.on("data", (chunk: Buffer) => (bytes += chunk.length));
    try {
      await pipeline(body, createWriteStream(partial));
      await rename(partial, dest);
    } catch (error) {
      await rm(partial, { force: true });
      throw new CliError(`could not write ${dest}: ${(error as Error).message}`, { cause: error });
    }
    return bytes;
  }

  async #json(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await this.#send(method, path, body);
    if (!response.ok) await this.#fail(response, method, path);
    const text = await response.text();
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new CliError(`${method} ${path}: the scheduler did not answer with JSON`);
    }
  }

  async #send(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.#apiKey) headers.authorization = `Bearer ${this.#apiKey}`;
    let payload: FormData | string | undefined;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(body);
    }
    try {
      return await this.#fetch(`${this.url}${path}`, { method, headers, body: payload ?? null });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(
        `cannot reach the scheduler at ${this.url} (${cause?.code ?? cause?.message ?? (error as Error).message})`,
        {
          hint: "start one with `corral up`, or point --url / CORRAL_URL at a running scheduler",
          cause: error,
        },
      );
    }
  }

  async #fail(response: Response, method: string, path: string): Promise<never> {
    const text = await response.text().catch(() => "");
    let error: { message?: unknown; param?: unknown; code?: unknown } | undefined;
    try {
      error = (JSON.parse(text) as { error?: typeof error }).error;
    } catch {
      error = undefined;
    }
    const message = typeof error?.message === "string" ? error.message : text.trim() || response.statusText;
    throw new SchedulerHttpError(
      response.status,
      `${method} ${path}: ${response.status} ${message}`,
      typeof error?.param === "string" ? error.param : null,
      typeof error?.code === "string" ? error.code : null,
    );
  }
}
