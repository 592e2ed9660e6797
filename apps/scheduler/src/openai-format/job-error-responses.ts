import type { JobErrorCode } from "@corral/shared";

/** The kinds of request whose jobs can fail. */
export type JobKind = "chat" | "completion" | "embedding" | "transcription" | "translation";

/**
 * A `param` meaning "the field that carried the job's input": `messages` for a chat,
 * `prompt` for a completion, `input` for embeddings, `file` for transcriptions and translations.
 */
export const INPUT_FIELD: unique symbol = Symbol("the request's input field");

/**
 * What a client gets for a job that failed with a code.
 * - 400s blame the request: the job's message as is, naming the field.
 * - 404s say what the request named is gone (its model): the job's message as is.
 * - 500s do not: `Job <id> failed: <message>`, with no field.
 */
export type JobErrorResponse =
  | {
      status: 400;
      type: "invalid_request_error";
      param: string | typeof INPUT_FIELD;
      /** OpenAI error `code`, when it is not the job's own. */
      code?: string;
    }
  | { status: 404; type: "invalid_request_error"; param: string; code?: string }
  | { status: 500; type: "server_error"; param: null };

const serverError = { status: 500, type: "server_error", param: null } as const;

/**
 * The one table from job error codes to HTTP: every code has a row (the `Record` type
 * makes a new code without one a compile error). Failures caused by the request are 400s
 * naming the field; the others are 500s carrying the worker's code.
 */
export const JOB_ERROR_RESPONSES: Readonly<Record<JobErrorCode, JobErrorResponse>> = {
  unsupported_schema: {
    status: 400,
    type: "invalid_request_error",
    param: "response_format.json_schema.schema",
  },
  context_length_exceeded: { status: 400, type: "invalid_request_error", param: INPUT_FIELD },
  invalid_job: { status: 400, type: "invalid_request_error", param: INPUT_FIELD, code: "invalid_value" },
  worker_error: serverError,
  invalid_payload: serverError,
  job_stalled: serverError,
  model_file_error: serverError,
  out_of_memory: serverError,
  model_unloaded: serverError,
  enqueue_failed: serverError,
  job_timeout: serverError,
  job_too_slow: serverError,
  model_removed: { status: 404, type: "invalid_request_error", param: "model" },
  invalid_logit_bias: { status: 400, type: "invalid_request_error", param: "logit_bias", code: "invalid_value" },
  audio_expired: serverError,
};

/** The field a request kind carries its input in. */
export const inputField = (kind: JobKind): string =>
  kind === "chat" ? "messages" : kind === "completion" ? "prompt" : kind === "embedding" ? "input" : "file";
