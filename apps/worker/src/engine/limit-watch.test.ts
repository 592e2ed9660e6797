import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { jobErrorCodeOf, type JobPayload } from "@corral/shared";
import { pino } from "pino";
import { STORIES, sharedModelsDir } from "../../../../test/support/models.js";
import { Engine, JobLimitError, isUnrecoverable, type JobLimits, type LoadedModel } from "./index.js";

const logger = pino({ level: "silent" });
const storiesPath = join(sharedModelsDir(), `${STORIES}.gguf`);

const longJob = (overrides: Partial<JobPayload> = {}): JobPayload => ({
  id: "job-limits",
  tenant: "t1",
  model: STORIES,
  file: `${STORIES}.gguf`,
  source: "native",
  kind: "completion",
  prompt: "Once upon a time",
  max_tokens: 400,
  temperature: 0.8,
  seed: 1,
  stream: false,
  requirement_bytes: 0,
  created_at: Date.now(),
  ...overrides,
});

/** Issue 16: every job runs under a wall-time limit and a slowest allowed token rate (real llama.cpp). */
describe("job limits on stories260K", () => {
  const engines: Engine[] = [];
  const load = async (limits: JobLimits): Promise<LoadedModel> => {
    const engine = await Engine.create({ gpu: false, threads: 1, logger, limits });
    engines.push(engine);
    return engine.load({ modelId: STORIES, path: storiesPath, contextSize: 512, sequences: 1 });
  };
  after(async () => {
    for (const engine of engines) await engine.close();
  });

  test("a generation past the wall-time limit is stopped and fails with job_timeout, not retried", async () => {
    const model = await load({ timeoutMs: 1, minTokensPerSecond: 0, rateGraceMs: 0 });
    const error = await model.run(longJob()).then(
      () => assert.fail("the job should have gone over its wall time"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof JobLimitError, String(error));
    assert.equal(error.limit, "wall-time");
    assert.equal(jobErrorCodeOf(error), "job_timeout");
    assert.match(error.message, /longer than this worker's limit of 1 ms per job \(CORRAL_JOB_TIMEOUT_MS\)/);
    assert.ok(isUnrecoverable(error), "a job over its limit is not retried");
    // The sequence went back: the next job runs.
    assert.equal(model.busySequences, 0);
  });

  test("a generation slower than the slowest allowed rate is stopped and fails with job_too_slow", async () => {
    const model = await load({ timeoutMs: 0, minTokensPerSecond: 1_000_000, rateGraceMs: 0 });
    const error = await model.run(longJob()).then(
      () => assert.fail("the job should have been too slow"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof JobLimitError, String(error));
    assert.equal(error.limit, "token-rate");
    assert.equal(jobErrorCodeOf(error), "job_too_slow");
    assert.match(error.message, /slower than this worker's slowest allowed rate of 1000000 tokens\/s/);
  });

  test("a job within its limits runs to the end, and a cancel is still a cancel", async () => {
    const model = await load({ timeoutMs: 600_000, minTokensPerSecond: 0.001, rateGraceMs: 0 });
    const done = await model.run(longJob({ max_tokens: 16, temperature: 0 }));
    assert.equal(done.usage.completion_tokens, 16);
    const controller = new AbortController();
    controller.abort();
    const cancelled = await model.run(longJob(), { signal: controller.signal });
    assert.equal(cancelled.finish_reason, "cancelled");
  });
});
