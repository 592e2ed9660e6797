import { JobRecord, WorkerState, isFinalStatus, type JobRequest } from "@corral/shared";
import type { ModelObject, QuotaObject } from "@corral/scheduler";
import { CliError } from "../errors.js";

export interface SchedulerClientOptions {
  /** Base URL of the scheduler, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** Sent as `Authorization: Bearer <key>` when set. */
  apiKey?: string | undefined;
  /** @defaultValue the global `fetch` */
  fetch?: typeof fetch;
}

/** An HTTP error answer from the scheduler, with the message and field it named. */
export class SchedulerHttpError extends CliError {
  readonly status: number;
  readonly param: string | null;
  readonly code: string | null;
  constructor(status: number, message: string, param: string | null, code: string | null) {
    super(`${message}${param ? ` (param: ${param})` : ""}`, { exitCode: 1 });
    this.status = status;
    this.param = param;
    this.code = code;
  }
}

/** A model as `GET /v1/models` lists it: OpenAI's fields, Corral's details under `corral`. */
export type ModelEntry = Pick<ModelObject, "id"> & Partial<Omit<ModelObject, "id">>;

/** The body of `POST /v1/jobs` the CLI sends. */
export type JobSubmission = Partial<JobRequest> & Pick<JobRequest, "model">;

export interface WaitOptions {
  /** Longest one long poll waits, seconds. @defaultValue 30 */
  waitSeconds?: number;
  /** Longest one long poll waits while the job is queued and `onProgress` is given, seconds. @defaultValue 5 */
  queuedWaitSeconds?: number;
  signal?: AbortSignal;
  /** Called with each record that is not final yet. @defaultValue none */
  onProgress?: (record: JobRecord) => void;
}

/** A small typed client for the scheduler's native endpoints. */
export class SchedulerClient {
  readonly url: string;
  readonly #apiKey: string | undefined;
  readonly #fetch: typeof fetch;

  constructor(options: SchedulerClientOptions) {
    this.url = options.url.replace(/\/+$/, "");
    this.#apiKey = options.apiKey;
    this.#fetch = options.fetch ?? fetch;
  }

  async listWorkers(): Promise<WorkerState[]> {
    const body = await this.#request("GET", "/v1/workers");
    return listOf(body, "workers").map((raw) => {
      const parsed = WorkerState.safeParse(raw);
      return parsed.success ? parsed.data : (raw as WorkerState);
    });
  }

  async quota(): Promise<QuotaObject> {
    return (await this.#request("GET", "/v1/quota")) as QuotaObject;
  }

  async listModels(): Promise<ModelEntry[]> {
    const body = await this.#request("GET", "/v1/models");
    return listOf(body, "models") as ModelEntry[];
  }

  /**
   * `POST /v1/audio/transcriptions` (or `/translations`) with one file as multipart, and the
   * answer's body as text (its format is the `response_format` field's).
   */
  async transcribe(
    audio: { data: Uint8Array; filename: string },
    fields: Record<string, string>,
    options: { translate?: boolean; signal?: AbortSignal } = {},
  ): Promise<string> {
    const form = new FormData();
    form.append("file", new Blob([audio.data]), audio.filename);
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    const path = options.translate ? "/v1/audio/translations" : "/v1/audio/transcriptions";
    const { text } = await this.#send("POST", path, form, options.signal);
    return text;
  }

  async submitJob(job: JobSubmission): Promise<JobRecord> {
    return asJobRecord(await this.#request("POST", "/v1/jobs", job));
  }

  /** `GET /v1/jobs/:id`, long-polling up to `waitSeconds` for a final status when given. */
  async getJob(id: string, waitSeconds?: number, signal?: AbortSignal): Promise<JobRecord> {
    const query = waitSeconds === undefined ? "" : `?wait=${waitSeconds}`;
    return asJobRecord(await this.#request("GET", `/v1/jobs/${encodeURIComponent(id)}${query}`, undefined, signal));
  }

  /**
   * Long-polls until the job is final (succeeded, failed or cancelled), calling `onProgress`
   * with each record that is not. While the job is queued each poll is at most
   * `queuedWaitSeconds`, so its queue position is seen as it moves.
   */
  async waitForJob(id: string, options: WaitOptions = {}): Promise<JobRecord> {
    const waitSeconds = options.waitSeconds ?? 30;
    let queued = options.onProgress !== undefined;
    for (;;) {
      options.signal?.throwIfAborted();
      const wait = queued ? Math.min(waitSeconds, options.queuedWaitSeconds ?? 5) : waitSeconds;
      const record = await this.getJob(id, wait, options.signal);
      if (isFinalStatus(record.status)) return record;
      queued = options.onProgress !== undefined && record.status === "queued";
      options.onProgress?.(record);
    }
  }

  async #request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<unknown> {
    const { text, parsed } = await this.#send(
      method,
      path,
      body === undefined ? undefined : JSON.stringify(body),
      signal,
    );
    if (parsed === undefined && text) throw new CliError(`${method} ${path}: the scheduler did not answer with JSON`);
    return parsed;
  }

  /** Sends a JSON (string) or multipart (FormData) body; a non-2xx answer throws {@link SchedulerHttpError}. */
  async #send(
    method: string,
    path: string,
    body: string | FormData | undefined,
    signal?: AbortSignal,
  ): Promise<{ text: string; parsed: unknown }> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (typeof body === "string") headers["content-type"] = "application/json";
    if (this.#apiKey) headers.authorization = `Bearer ${this.#apiKey}`;
    let response: Response;
    try {
      response = await this.#fetch(`${this.url}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        ...(signal ? { signal } : {}),
      });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const reason = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new CliError(`cannot reach the scheduler at ${this.url} (${reason})`, {
        hint: "start one with `corral up`, or point --url / CORRAL_URL at a running scheduler",
        cause: error,
      });
    }
    const text = await response.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const err = (parsed as { error?: { message?: unknown; param?: unknown; code?: unknown } } | undefined)?.error;
      const message =
        typeof err?.message === "string" ? err.message : text.trim() || `${response.status} ${response.statusText}`;
      throw new SchedulerHttpError(
        response.status,
        `${method} ${path}: ${response.status} ${message}`,
        typeof err?.param === "string" ? err.param : null,
        typeof err?.code === "string" ? err.code : null,
      );
    }
    return { text, parsed };
  }
}

/** Accepts `[…]`, `{data: […]}` or `{<key>: […]}`. */
function listOf(body: unknown, key: string): unknown[] {
  if (Array.isArray(body)) return body;
  if (body && typeof body === "object") {
    const record = body as Record<string, unknown>;
    if (Array.isArray(record.data)) return record.data;
    if (Array.isArray(record[key])) return record[key];
  }
  throw new CliError(`unexpected answer from the scheduler: expected a list of ${key}`);
}

function asJobRecord(body: unknown): JobRecord {
  const parsed = JobRecord.safeParse(body);
  if (parsed.success) return parsed.data;
  if (body && typeof body === "object" && typeof (body as { id?: unknown }).id === "string") return body as JobRecord;
  throw new CliError("unexpected answer from the scheduler: expected a job record");
}
