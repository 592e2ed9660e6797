import { createHash } from "node:crypto";
import {
  CorralError,
  JobError,
  MAX_JSON_DEPTH,
  PayloadTooLargeError,
  exceedsJsonDepth,
  type BatchEndpoint,
  type BatchError,
  type BatchLineResult,
  type BatchOutputLine,
  type CatalogModel,
  type JobRecord,
  type JobToolCall,
} from "@corral/shared";
import { errorBody } from "../openai-format/error-body.js";
import { UnsupportedFeatureError } from "../openai-format/errors.js";
import { chatJobInputs, completionJobInputs, embeddingJobInput } from "../openai-format/job-inputs.js";
import { jobOutcomeError } from "../openai-format/job-outcome.js";
import {
  chatCompletion,
  embeddingList,
  sumUsage,
  textCompletion,
  type ChoiceOutput,
} from "../openai-format/responses.js";
import { openAIToolCalls } from "../openai-format/tools.js";
import { parseChatRequest, parseCompletionRequest, parseEmbeddingRequest } from "../openai-format/schemas.js";
import type { JobInput } from "../jobs/types.js";

/**
 * One batch line, from the input file to the output file. Requests are parsed and
 * replies shaped by the OpenAI endpoints' own functions (api/openai), so a line's body
 * is checked exactly as the online endpoint checks it, and its output `body` is exactly
 * what the online endpoint would return.
 */

export type LineKind = "chat" | "completion" | "embedding";

export const ENDPOINT_KIND: Readonly<Record<BatchEndpoint, LineKind>> = {
  "/v1/chat/completions": "chat",
  "/v1/completions": "completion",
  "/v1/embeddings": "embedding",
};

/** A line that passed the structural checks. */
export interface RequestLine {
  custom_id: string;
  body: Record<string, unknown>;
}

const structural = (line: number, code: string, message: string, param: string | null = null): BatchError => ({
  code,
  message: `Line ${line}: ${message}`,
  param,
  line,
});

/**
 * The structural checks of one non-blank line: JSON, an object with a string `custom_id`,
 * `method: "POST"`, `url` equal to the batch's endpoint, and an object `body`. A failure
 * here fails the whole batch (OpenAI's rule); the body's own content is checked later,
 * per line.
 */
export function checkLine(
  text: string,
  line: number,
  endpoint: BatchEndpoint,
): { ok: true; request: RequestLine } | { ok: false; error: BatchError } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: structural(line, "invalid_json_line", `not valid JSON (${(error as Error).message}).`) };
  }
  if (exceedsJsonDepth(value, MAX_JSON_DEPTH)) {
    return { ok: false, error: structural(line, "invalid_json_line", `nests deeper than ${MAX_JSON_DEPTH} levels.`) };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return {
      ok: false,
      error: structural(line, "invalid_request", "expected a JSON object {custom_id, method, url, body}."),
    };
  }
  const v = value as Record<string, unknown>;
  if (v.custom_id === undefined || v.custom_id === null) {
    return { ok: false, error: structural(line, "missing_custom_id", "`custom_id` is required.", "custom_id") };
  }
  if (typeof v.custom_id !== "string" || v.custom_id.length === 0 || v.custom_id.length > 512) {
    return {
      ok: false,
      error: structural(line, "invalid_custom_id", "`custom_id` must be a string of 1 to 512 characters.", "custom_id"),
    };
  }
  if (v.method !== "POST") {
    return {
      ok: false,
      error: structural(
        line,
        "invalid_method",
        `\`method\` must be "POST" (got ${JSON.stringify(v.method ?? null)}).`,
        "method",
      ),
    };
  }
  if (v.url !== endpoint) {
    return {
      ok: false,
      error: structural(
        line,
        "mismatched_url",
        `\`url\` must be the batch's endpoint ${endpoint} (got ${JSON.stringify(v.url ?? null)}).`,
        "url",
      ),
    };
  }
  if (v.body === null || typeof v.body !== "object" || Array.isArray(v.body)) {
    return {
      ok: false,
      error: structural(line, "invalid_body", "`body` must be a JSON object (the request).", "body"),
    };
  }
  return { ok: true, request: { custom_id: v.custom_id, body: v.body as Record<string, unknown> } };
}

/** What formatting a line's reply needs besides its result. */
export interface ReplyShape {
  kind: LineKind;
  /** `/v1/completions` with `echo`: the prompt, put before the text. */
  echo: string | null;
  /** `/v1/embeddings`: the requested encoding. */
  encoding: "float" | "base64";
  /** `/v1/embeddings`: the number of inputs. */
  inputs: number;
}

/** A line's request as a job, plus how to shape its reply. */
export interface LineJob {
  input: JobInput;
  shape: ReplyShape;
}

/** Batch bodies are run without streaming; these fields are ignored rather than refused. */
function withoutStreaming(body: Record<string, unknown>): Record<string, unknown> {
  if (!("stream" in body) && !("stream_options" in body)) return body;
  const { stream: _stream, stream_options: _options, ...rest } = body;
  return rest;
}

/** Parses a body as the online endpoint does, without resolving the model. @throws CorralError (per-line fault). */
export function parseLineBody(
  endpoint: BatchEndpoint,
  raw: Record<string, unknown>,
): { model: string; shape: ReplyShape; build: (model: CatalogModel) => JobInput } {
  const body = withoutStreaming(raw);
  const kind = ENDPOINT_KIND[endpoint];
  if (kind === "chat") {
    const request = parseChatRequest(body);
    if (request.n > 1) throw oneChoice("n");
    return {
      model: request.model,
      shape: { kind, echo: null, encoding: "float", inputs: 0 },
      build: (model) => chatJobInputs(request, model, false)[0]!,
    };
  }
  if (kind === "completion") {
    const request = parseCompletionRequest(body);
    if (request.n > 1) throw oneChoice("n");
    if (request.prompts.length > 1) throw oneChoice("prompt");
    if (request.bestOf > 1) throw oneChoice("best_of");
    return {
      model: request.model,
      shape: { kind, echo: request.echo ? (request.prompts[0] ?? "") : null, encoding: "float", inputs: 0 },
      build: (model) => completionJobInputs(request, model, false)[0]!,
    };
  }
  const request = parseEmbeddingRequest(body);
  return {
    model: request.model,
    shape: { kind, echo: null, encoding: request.encoding, inputs: request.inputs.length },
    build: (model) => {
      if (request.dimensions !== undefined && request.dimensions !== model.embedding_length) {
        throw new UnsupportedFeatureError(
          `Model ${model.id} returns ${model.embedding_length ?? "model-sized"}-dimensional embeddings; other \`dimensions\` are not supported.`,
          "dimensions",
          "unsupported_value",
        );
      }
      return embeddingJobInput(request, model);
    },
  };
}

const oneChoice = (param: "n" | "prompt" | "best_of"): UnsupportedFeatureError =>
  new UnsupportedFeatureError(
    param === "n"
      ? "Batch lines take `n` = 1: put each choice on its own line (with its own custom_id)."
      : param === "best_of"
        ? "Batch lines generate one completion each, so `best_of` must be 1 (or absent)."
        : "Batch lines take one prompt: put each prompt on its own line (with its own custom_id).",
    param,
    "unsupported_value",
  );

/** The result of a line that never became a job (its request is invalid), from the error the online endpoint would answer. */
/** The fault of a line longer than one request may be (CORRAL_BODY_LIMIT): it is not run. */
export function lineTooLongError(line: number, bytes: number, maxLineBytes: number): CorralError {
  return new PayloadTooLargeError(
    `Line ${line} is ${bytes} bytes, over the limit of ${maxLineBytes} bytes for one request (CORRAL_BODY_LIMIT, as for the online API); it was not run.`,
  );
}

export function faultResult(error: CorralError): BatchLineResult {
  return {
    job_id: null,
    status: "failed",
    model: null,
    finished_at: null,
    result: null,
    error: { message: error.message, code: error.code },
    status_code: error.status,
    type: error.type,
    param: error.param,
  };
}

/** How a batch ended, for the lines that have no result. */
export type Closing = "completed" | "cancelled" | "expired";

/** `chatcmpl-…` / `cmpl-…` ids derived from the job id: the same on every finalize attempt. */
const replyId = (kind: "chat" | "completion", jobId: string): string =>
  `${kind === "chat" ? "chatcmpl" : "cmpl"}-${createHash("sha256").update(jobId).digest("base64url").slice(0, 24)}`;

/**
 * The output (or error) file line of one request. `ok` says which file it goes to: 200
 * replies to the output file, everything else to the error file.
 */
export function outputLine(args: {
  id: string;
  customId: string;
  shape: ReplyShape | null;
  result: BatchLineResult | null;
  closing: Closing;
}): { ok: boolean; line: BatchOutputLine } {
  const { id, customId, shape, result, closing } = args;
  const noResult = (): { ok: false; line: BatchOutputLine } => ({
    ok: false,
    line: {
      id,
      custom_id: customId,
      response: null,
      error:
        closing === "expired"
          ? {
              code: "batch_expired",
              message: "This request could not be executed before the completion window expired.",
            }
          : closing === "cancelled"
            ? { code: "batch_cancelled", message: "This request was not run: the batch was cancelled." }
            : { code: "internal_error", message: "No result was recorded for this request." },
    },
  });
  if (result === null || result.status === "cancelled" || result.status === "queued" || result.status === "running") {
    return noResult();
  }
  const requestId = result.job_id ?? id;
  const failure = (error: CorralError): { ok: false; line: BatchOutputLine } => ({
    ok: false,
    line: {
      id,
      custom_id: customId,
      response: { status_code: error.status, request_id: requestId, body: errorBody(error) },
      error: { code: error.code, message: error.message },
    },
  });
  if (result.status === "failed") {
    if (result.job_id === null) {
      const status = result.status_code ?? 400;
      const error = result.error ?? { message: "The request is invalid.", code: "invalid_request" };
      return {
        ok: false,
        line: {
          id,
          custom_id: customId,
          response: {
            status_code: status,
            request_id: requestId,
            body: {
              error: {
                message: error.message,
                type: result.type ?? (status < 500 ? "invalid_request_error" : "server_error"),
                param: result.param ?? null,
                code: error.code,
              },
            },
          },
          error: { code: error.code, message: error.message },
        },
      };
    }
    return failure(jobOutcomeError(asRecord(result), shape?.kind ?? "completion"));
  }
  // succeeded
  const r = result.result;
  if (r === null || shape === null || result.job_id === null || result.model === null) {
    return failure(new CorralError("The request succeeded but its result is missing.", { code: "result_missing" }));
  }
  const created = Math.floor((result.finished_at ?? Date.now()) / 1000);
  const usage = sumUsage([r.usage]);
  const finish = r.finish_reason === "length" ? ("length" as const) : ("stop" as const);
  let body: unknown;
  if (shape.kind === "chat") {
    body = chatCompletion(
      { id: replyId("chat", result.job_id), created, model: result.model },
      [
        withToolCalls(
          {
            text: r.text,
            finish_reason: finish,
            ...(r.logprobs ? { logprobs: r.logprobs } : {}),
            ...(r.reasoning !== undefined ? { reasoning: r.reasoning } : {}),
          },
          r.tool_calls,
        ),
      ],
      usage,
    );
  } else if (shape.kind === "completion") {
    body = textCompletion(
      { id: replyId("completion", result.job_id), created, model: result.model },
      [{ text: (shape.echo ?? "") + r.text, finish_reason: finish, ...(r.logprobs ? { logprobs: r.logprobs } : {}) }],
      usage,
    );
  } else {
    const vectors = r.embeddings;
    if (!vectors || vectors.length !== shape.inputs) {
      return failure(
        new CorralError(`the worker returned ${vectors?.length ?? 0} embeddings for ${shape.inputs} inputs`, {
          code: "embeddings_missing",
        }),
      );
    }
    body = embeddingList(result.model, vectors, shape.encoding, r.usage.prompt_tokens);
  }
  return {
    ok: true,
    line: { id, custom_id: customId, response: { status_code: 200, request_id: requestId, body }, error: null },
  };
}

/** A chat choice with the tool calls its job made. */
function withToolCalls(choice: ChoiceOutput, calls: readonly JobToolCall[] | undefined): ChoiceOutput {
  return calls?.length ? { ...choice, tool_calls: openAIToolCalls(calls), finish_reason: "tool_calls" } : choice;
}

/** The parts of a job record {@link jobOutcomeError} reads, from a line result. */
function asRecord(result: BatchLineResult): JobRecord {
  return {
    id: result.job_id ?? "",
    object: "job",
    tenant: "",
    model: result.model ?? "",
    source: "batch",
    status: result.status,
    priority: 0,
    created_at: 0,
    started_at: null,
    finished_at: result.finished_at,
    attempts: 0,
    worker: null,
    gpu: null,
    result: result.result,
    // A line with a job stores that job's error, so its code is a job error code.
    error: result.error === null ? null : JobError.parse(result.error),
  };
}
