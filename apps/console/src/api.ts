// The console's only way to the scheduler: the public /v1 API with the user's key as a
// bearer token. The key lives in sessionStorage (this tab, until it closes) and nowhere
// else: never in a URL, a cookie or a log line.

const KEY_ITEM = "corral.apiKey";

export function storedKey(): string | null {
  try {
    return sessionStorage.getItem(KEY_ITEM);
  } catch {
    return null;
  }
}

export function storeKey(key: string | null): void {
  if (key === null) sessionStorage.removeItem(KEY_ITEM);
  else sessionStorage.setItem(KEY_ITEM, key);
}

/** An API answer that was not 2xx, with OpenAI's error fields when the body had them. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: string | null,
    message: string,
  ) {
    super(message);
  }
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const key = storedKey();
  return { ...(key ? { authorization: `Bearer ${key}` } : {}), ...extra };
}

async function failure(response: Response): Promise<ApiError> {
  let code: string | null = null;
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = (await response.json()) as { error?: { message?: string; code?: string } };
    if (body.error?.message) message = body.error.message;
    code = body.error?.code ?? null;
  } catch {
    // not JSON
  }
  return new ApiError(response.status, code, message);
}

/** A JSON request to the API; throws {@link ApiError} on a non-2xx answer. */
export async function api<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const init: RequestInit = {
    method,
    headers: headers(body === undefined ? {} : { "content-type": "application/json" }),
    cache: "no-store",
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    ...(signal ? { signal } : {}),
  };
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  return (await response.json()) as T;
}

/** Uploads a file for a batch (`POST /v1/files`, multipart). */
export async function uploadFile(file: File): Promise<FileObject> {
  const form = new FormData();
  form.append("purpose", "batch");
  form.append("file", file, file.name);
  const response = await fetch("/v1/files", { method: "POST", headers: headers(), body: form });
  if (!response.ok) throw await failure(response);
  return (await response.json()) as FileObject;
}

/** Fetches a file's content with the key and hands it to the browser as a download. */
export async function downloadFile(id: string, name: string): Promise<void> {
  const response = await fetch(`/v1/files/${encodeURIComponent(id)}/content`, { headers: headers() });
  if (!response.ok) throw await failure(response);
  const url = URL.createObjectURL(await response.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * Streams a chat completion: calls `onText` with each piece of text as it arrives and
 * resolves with the response's `x-corral-*` headers and the usage of the last chunk.
 */
export async function streamChat(
  body: Record<string, unknown>,
  onText: (text: string) => void,
  signal: AbortSignal,
): Promise<StreamResult> {
  const response = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: headers({ "content-type": "application/json", accept: "text/event-stream" }),
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
    signal,
  });
  if (!response.ok || !response.body) throw await failure(response);
  const result: StreamResult = {
    jobId: response.headers.get("x-corral-job-id"),
    worker: response.headers.get("x-corral-worker"),
    gpu: response.headers.get("x-corral-gpu"),
    queueMs: numberOrNull(response.headers.get("x-corral-queue-ms")),
    usage: null,
    finishReason: null,
    firstTokenAt: null,
  };
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return result;
        const chunk = JSON.parse(data) as ChatChunk;
        if (chunk.error) throw new ApiError(500, chunk.error.code ?? null, chunk.error.message ?? "stream error");
        if (chunk.usage) result.usage = chunk.usage;
        for (const choice of chunk.choices ?? []) {
          if (choice.finish_reason) result.finishReason = choice.finish_reason;
          const text = choice.delta?.content;
          if (text) {
            result.firstTokenAt ??= performance.now();
            onText(text);
          }
        }
      }
    }
  }
  return result;
}

function numberOrNull(value: string | null): number | null {
  const n = value === null ? NaN : Number(value);
  return Number.isFinite(n) ? n : null;
}

interface ChatChunk {
  choices?: Array<{ delta?: { content?: string | null }; finish_reason?: string | null }>;
  usage?: Usage | null;
  error?: { message?: string; code?: string };
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface StreamResult {
  jobId: string | null;
  worker: string | null;
  gpu: string | null;
  queueMs: number | null;
  usage: Usage | null;
  finishReason: string | null;
  /** performance.now() of the first text. */
  firstTokenAt: number | null;
}

// ─── What the API answers (the fields the console reads) ──────────────────────────

export interface List<T> {
  object: "list";
  data: T[];
  has_more?: boolean;
}

export interface Gpu {
  index: number;
  name: string;
  memory_total_bytes: number | null;
  memory_used_bytes: number | null;
  memory_free_bytes: number | null;
  utilization_ratio: number | null;
  temperature_celsius: number | null;
}

export interface WorkerState {
  id: string;
  host: string;
  slot: string;
  pid: number;
  version: string;
  mode: "gpu" | "cpu";
  gpus: Gpu[];
  host_info: { hostname: string; cpu_model: string; cpu_cores: number; memory_total_bytes: number; os: string } | null;
  budget_total_bytes: number;
  budget_free_bytes: number;
  loaded_models: Array<{ model: string; sequences: number; busy_sequences: number; requirement_bytes: number }>;
  active_jobs: string[];
  state: "starting" | "idle" | "busy" | "draining";
  updated_at: number;
}

export interface Job {
  id: string;
  model: string;
  source: string;
  status: "queued" | "running" | "succeeded" | "failed" | "cancelled";
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  worker: string | null;
  queue_position?: number;
  estimated_start_at?: number;
  error: { message: string; code: string } | null;
}

export interface QueueModel {
  model: string;
  waiting: number;
  running: number;
  rate_per_second: number | null;
  expected_wait_ms: number | null;
}

export interface Model {
  id: string;
  corral?: { context_size?: number };
}

export interface Quota {
  tenant: string;
  queued_jobs: { limit: number | null };
  active_jobs: { limit: number | null; running: number | null };
  daily_tokens: { limit: number | null; used: number; day: string; resets_at: number };
  fair_share: { share: number; counter: number | null };
}

export interface FileObject {
  id: string;
  filename: string;
  bytes: number;
}

export interface Batch {
  id: string;
  endpoint: string;
  status: string;
  input_file_id: string;
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: number;
  in_progress_at: number | null;
  completed_at: number | null;
  request_counts: { total: number; completed: number; failed: number };
}
