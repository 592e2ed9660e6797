import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { InvalidRequestError, type JobErrorCode, type JobRecord } from "@corral/shared";
import { JobCancelledError, JobFailedError } from "./errors.js";
import { jobOutcomeError } from "./job-outcome.js";

const failed = (code: JobErrorCode, message = "why"): JobRecord => ({
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
  error: { message, code },
});

describe("jobOutcomeError", () => {
  test("failures caused by the request are 400s naming the field", () => {
    const schema = jobOutcomeError(
      failed("unsupported_schema", "response_format.json_schema.schema at /x: `not`"),
      "chat",
    );
    assert.ok(schema instanceof InvalidRequestError);
    assert.equal(schema.status, 400);
    assert.equal(schema.param, "response_format.json_schema.schema");
    assert.equal(schema.code, "unsupported_schema");
    assert.match(schema.message, /`not`/);
    assert.equal(jobOutcomeError(failed("context_length_exceeded"), "chat").param, "messages");
    assert.equal(jobOutcomeError(failed("context_length_exceeded"), "completion").param, "prompt");
    assert.equal(jobOutcomeError(failed("context_length_exceeded"), "embedding").param, "input");
    assert.equal(jobOutcomeError(failed("invalid_job"), "completion").status, 400);
  });

  test("other failures are 500s with the worker's code; cancelled jobs are 409 job_cancelled", () => {
    const other = jobOutcomeError(failed("model_file_error", "gone"), "chat");
    assert.ok(other instanceof JobFailedError);
    assert.equal(other.status, 500);
    assert.equal(other.code, "model_file_error");
    assert.match(other.message, /job_x failed: gone/);
    const cancelled = jobOutcomeError({ ...failed("worker_error"), status: "cancelled", error: null }, "chat");
    assert.ok(cancelled instanceof JobCancelledError);
    assert.equal(cancelled.status, 409);
    assert.equal(cancelled.code, "job_cancelled");
  });
});
