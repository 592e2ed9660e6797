import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { JOB_ERROR_CODES, JobErrorCode, type JobRecord } from "@corral/shared";
import { INPUT_FIELD, JOB_ERROR_RESPONSES, inputField, type JobKind } from "./job-error-responses.js";
import { jobOutcomeError } from "./job-outcome.js";

const KINDS: readonly JobKind[] = ["chat", "completion", "embedding"];

const failed = (code: JobErrorCode): JobRecord => ({
  id: "job_x",
  object: "job",
  tenant: "t",
  model: "m",
  source: "openai",
  status: "failed",
  priority: 50,
  created_at: 1,
  started_at: 2,
  finished_at: 3,
  attempts: 1,
  worker: "w",
  gpu: null,
  result: null,
  error: { message: "why", code },
});

describe("JOB_ERROR_RESPONSES", () => {
  test("has exactly one row per job error code", () => {
    assert.deepEqual(Object.keys(JOB_ERROR_RESPONSES).sort(), [...JOB_ERROR_CODES].sort());
    assert.deepEqual(JOB_ERROR_CODES, JobErrorCode.options);
  });

  test("the table is the answer: status, type, param and code of every code, for every kind", () => {
    for (const code of JOB_ERROR_CODES) {
      const row = JOB_ERROR_RESPONSES[code];
      for (const kind of KINDS) {
        const error = jobOutcomeError(failed(code), kind);
        const at = `${code} (${kind})`;
        assert.equal(error.status, row.status, at);
        assert.equal(error.type, row.type, at);
        assert.equal(error.param, row.param === INPUT_FIELD ? inputField(kind) : row.param, at);
        assert.equal(error.code, (row.status === 500 ? undefined : row.code) ?? code, at);
        assert.equal(error.message, row.status === 500 ? "Job job_x failed: why" : "why", at);
      }
    }
  });

  test("pins each row", () => {
    const rows = Object.fromEntries(
      JOB_ERROR_CODES.map((code) => {
        const error = jobOutcomeError(failed(code), "chat");
        return [code, [error.status, error.type, error.param, error.code]];
      }),
    );
    assert.deepEqual(rows, {
      worker_error: [500, "server_error", null, "worker_error"],
      invalid_payload: [500, "server_error", null, "invalid_payload"],
      invalid_job: [400, "invalid_request_error", "messages", "invalid_value"],
      job_stalled: [500, "server_error", null, "job_stalled"],
      model_file_error: [500, "server_error", null, "model_file_error"],
      context_length_exceeded: [400, "invalid_request_error", "messages", "context_length_exceeded"],
      unsupported_schema: [400, "invalid_request_error", "response_format.json_schema.schema", "unsupported_schema"],
      out_of_memory: [500, "server_error", null, "out_of_memory"],
      model_unloaded: [500, "server_error", null, "model_unloaded"],
      enqueue_failed: [500, "server_error", null, "enqueue_failed"],
      job_timeout: [500, "server_error", null, "job_timeout"],
      job_too_slow: [500, "server_error", null, "job_too_slow"],
      model_removed: [404, "invalid_request_error", "model", "model_removed"],
      invalid_logit_bias: [400, "invalid_request_error", "logit_bias", "invalid_value"],
      audio_expired: [500, "server_error", null, "audio_expired"],
    });
  });
});
