import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { toFile } from "openai";
import { NO_REDIS_TLS_FILES, connectRedis, parseJobEvent } from "@corral/shared";
import {
  API_KEY,
  STORIES,
  completionLine,
  jsonl,
  readJsonl,
  startBatchStack,
  type BatchStack,
} from "../../batch/support/harness.js";

/** What one fault case counts: batch lines by custom_id, native jobs by id. */
export interface FaultReport {
  case: string;
  lines: number;
  /** custom_ids in neither the output nor the error file. */
  lost: number;
  /** custom_ids more than once across the output and error files. */
  duplicated: number;
  /** custom_ids in the error file (attempts remained for all of them). */
  failed: number;
  /** Native jobs submitted during the fault and acknowledged (202). */
  acknowledged: number;
  /** Acknowledged native jobs that are gone or never reached a final state. */
  acknowledgedLost: number;
  /** Acknowledged native jobs that ended `failed`. */
  acknowledgedFailed: number;
  /** Native jobs submitted and acknowledged just before the fault (`submitBeforeFault`); counted in `acknowledged` too. */
  acknowledgedBefore: number;
  /** Submits answered with an error during the fault (not acknowledged: the client retries). */
  refusedSubmits: number;
  /** The refused submits by answer: `"503 redis_unavailable"`, `"500 internal_error"`, `"no answer"`, … */
  refusals: Record<string, number>;
  /** Refused submits answered without a positive `Retry-After`. */
  refusedWithoutRetryAfter: number;
  /** The longest a refused submit took to be answered, ms. */
  slowestRefusalMs: number | null;
  /** With `countFinals`: acknowledged native jobs whose final event was published more than once. */
  finalTwice: number | null;
  /** Acknowledged native jobs that ran more than once (`attempts` > 1 on the final record). */
  acknowledgedRerun: number;
  /** From the fault until the batch's completed count grew again, ms. */
  batchRecoveryMs: number | null;
  /** From the fault until the first submit acknowledged after it, ms. */
  submitRecoveryMs: number | null;
  totalMs: number;
}

export interface FaultRunOptions {
  label: string;
  lines?: number;
  /** Lines completed before the fault strikes. @defaultValue a quarter */
  strikeAfter?: number;
  /** The fault: kill a master, a slot, … Resolves once it has struck. */
  fault(): Promise<void>;
  /** Submit native jobs from the fault on, for this long. @defaultValue 0 (none) */
  submitForMs?: number;
  /** Native jobs to submit, and have acknowledged, just before the fault. @defaultValue 0 */
  submitBeforeFault?: number;
  /**
   * Subscribe to the job-events channel for the whole case and count each acknowledged
   * native job's final events (`finalTwice`). Single node and Sentinel only. @defaultValue false
   */
  countFinals?: boolean;
  /** The longest the case may take once the fault struck before it counts as hung. @defaultValue 240 s */
  timeoutMs?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function call(
  stack: BatchStack,
  method: string,
  path: string,
  body?: unknown,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
): Promise<{ status: number; json: any; retryAfter: number | null }> {
  const response = await fetch(`${stack.scheduler.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${API_KEY}`, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const retryAfter = response.headers.get("retry-after");
  return { status: response.status, json, retryAfter: retryAfter === null ? null : Number(retryAfter) };
}

/** Retries `fn` through a Redis outage (errors, 5xx) until `deadline`. */
async function retrying<T>(deadline: number, fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(250);
    }
  }
}

/**
 * Runs a batch of `lines` completion lines on `stack`, strikes with `fault` once a quarter
 * of them completed (optionally submitting native jobs meanwhile), waits for the batch to
 * finish and counts every custom_id and acknowledged job. Prints the report.
 */
export async function runBatchThroughFault(stack: BatchStack, options: FaultRunOptions): Promise<FaultReport> {
  const lines = options.lines ?? 60;
  const strikeAfter = options.strikeAfter ?? Math.floor(lines / 4);
  const client = stack.client();
  const ids = Array.from({ length: lines }, (_, i) => `${options.label}-${i}`);
  const file = await client.files.create({
    file: await toFile(Buffer.from(jsonl(ids.map((id) => completionLine(id, { max_tokens: 24 })))), "in.jsonl"),
    purpose: "batch",
  });
  const batch = await client.batches.create({
    input_file_id: file.id,
    endpoint: "/v1/completions",
    completion_window: "24h",
  });
  // Final job events, counted per job id from before the first submit on.
  const finals = new Map<string, number>();
  const events = options.countFinals ? connectRedis(stack.redisUrl, NO_REDIS_TLS_FILES, {}) : null;
  if (events) {
    events.on("error", () => undefined); // the fault may take Redis away; ioredis resubscribes
    events.on("message", (_channel: string, message: string) => {
      const { id } = parseJobEvent(message);
      finals.set(id, (finals.get(id) ?? 0) + 1);
    });
    await events.subscribe(stack.keys.jobEventsChannel);
  }
  const acknowledged: string[] = [];
  let n = 0;
  const submitNative = () =>
    call(stack, "POST", "/v1/jobs", {
      model: STORIES,
      prompt: `Once upon a time ${options.label} native ${n++}`,
      max_tokens: 8,
      temperature: 0,
    });

  const started = Date.now();
  for (;;) {
    const current = await client.batches.retrieve(batch.id);
    if ((current.request_counts?.completed ?? 0) >= strikeAfter) break;
    if (Date.now() - started > 180_000) throw new Error("the batch did not get going within 180 s");
    await sleep(100);
  }

  for (let i = 0; i < (options.submitBeforeFault ?? 0); i++) {
    const { status, json } = await submitNative();
    if (status !== 202) throw new Error(`a submit before the fault got ${status}: ${JSON.stringify(json)}`);
    acknowledged.push(json.id as string);
  }
  const acknowledgedBefore = acknowledged.length;

  let completedAtFault = (await client.batches.retrieve(batch.id)).request_counts?.completed ?? 0;
  const struckAt = Date.now();
  const deadline = struckAt + (options.timeoutMs ?? 240_000);
  let batchRecoveryMs: number | null = null;
  let submitRecoveryMs: number | null = null;
  let refusedSubmits = 0;
  const refusals: Record<string, number> = {};
  let refusedWithoutRetryAfter = 0;
  let slowestRefusalMs: number | null = null;
  const refuse = (answer: string, retryAfter: number | null, took: number) => {
    refusedSubmits++;
    refusals[answer] = (refusals[answer] ?? 0) + 1;
    if (!(retryAfter !== null && retryAfter > 0)) refusedWithoutRetryAfter++;
    slowestRefusalMs = Math.max(slowestRefusalMs ?? 0, took);
  };

  const submitting = (async () => {
    const until = struckAt + (options.submitForMs ?? 0);
    while (Date.now() < until) {
      const sent = Date.now();
      try {
        const { status, json, retryAfter } = await submitNative();
        if (status === 202) {
          acknowledged.push(json.id as string);
          submitRecoveryMs ??= Date.now() - struckAt;
        } else refuse(`${status} ${json?.error?.code ?? "?"}`, retryAfter, Date.now() - sent);
      } catch {
        refuse("no answer", null, Date.now() - sent);
      }
      await sleep(100);
    }
  })();

  await options.fault();

  let done;
  for (;;) {
    try {
      const current = await client.batches.retrieve(batch.id);
      const completed = current.request_counts?.completed ?? 0;
      if (batchRecoveryMs === null && completed > completedAtFault) batchRecoveryMs = Date.now() - struckAt;
      completedAtFault = Math.min(completedAtFault, completed);
      if (["completed", "failed", "cancelled", "expired"].includes(current.status)) {
        done = current;
        break;
      }
    } catch {
      // Redis (or the scheduler's view of it) is still away.
    }
    if (Date.now() > deadline)
      throw new Error(`the batch did not finish within ${deadline - struckAt} ms of the fault`);
    await sleep(200);
  }
  const stage = (what: string) => console.log(`# ${options.label}: ${what} at +${Date.now() - struckAt} ms`);
  stage(`batch ${done.status}`);
  await submitting;
  stage("submits done");

  const seen = new Map<string, number>();
  const outputs = done.output_file_id ? await retrying(deadline, () => readJsonl(client, done.output_file_id!)) : [];
  const errors = done.error_file_id ? await retrying(deadline, () => readJsonl(client, done.error_file_id!)) : [];
  for (const line of [...outputs, ...errors]) {
    const id = line.custom_id as string;
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }

  stage("files read");
  let acknowledgedLost = 0;
  let acknowledgedFailed = 0;
  let acknowledgedRerun = 0;
  for (const id of acknowledged) {
    const record = await retrying(deadline, async () => {
      const { status, json } = await call(stack, "GET", `/v1/jobs/${id}?wait=10`);
      if (status >= 500) throw new Error(`GET /v1/jobs/${id}: ${status}`);
      return status === 200 ? (json as { status: string; attempts?: number }) : null;
    });
    if (record === null || !["succeeded", "failed", "cancelled"].includes(record.status)) acknowledgedLost++;
    else if (record.status === "failed") acknowledgedFailed++;
    if ((record?.attempts ?? 0) > 1) acknowledgedRerun++;
  }
  let finalTwice: number | null = null;
  if (events) {
    await sleep(500); // the last final events are on their way
    events.disconnect();
    finalTwice = acknowledged.filter((id) => (finals.get(id) ?? 0) > 1).length;
  }

  stage("native jobs checked");
  const report: FaultReport = {
    case: options.label,
    lines,
    lost: ids.filter((id) => !seen.has(id)).length,
    duplicated: [...seen.values()].filter((count) => count > 1).length,
    failed: errors.length,
    acknowledged: acknowledged.length,
    acknowledgedLost,
    acknowledgedFailed,
    acknowledgedBefore,
    refusedSubmits,
    refusals,
    refusedWithoutRetryAfter,
    slowestRefusalMs,
    finalTwice,
    acknowledgedRerun,
    batchRecoveryMs,
    submitRecoveryMs,
    totalMs: Date.now() - struckAt,
  };
  console.log(`# fault report ${JSON.stringify(report)}`);
  return report;
}

/**
 * Before a fault: the paths that need more than plain commands work on this topology — a
 * streamed chat (the stream hub's blocking XREAD) and a waiting submit (the job-events
 * subscription).
 */
export async function checkStreamingAndWaits(stack: BatchStack): Promise<{ chunks: number; waited: string }> {
  const stream = await stack.client().chat.completions.create({
    model: STORIES,
    messages: [{ role: "user", content: "Once upon a time" }],
    max_tokens: 16,
    temperature: 0,
    stream: true,
  });
  let chunks = 0;
  for await (const chunk of stream) if (chunk.choices[0]?.delta?.content) chunks++;
  const { json } = await call(stack, "POST", "/v1/jobs?wait=60", {
    model: STORIES,
    prompt: "Once upon a time",
    max_tokens: 8,
    temperature: 0,
  });
  return { chunks, waited: (json as { status: string }).status };
}

/** A replicated Redis a failover case runs Corral on (a Sentinel set, a Cluster). */
export interface FaultTopology {
  url: string;
  stop(): Promise<void>;
}

export interface FaultCaseOptions {
  label: string;
  /** Submit native jobs from the fault on, for this long. */
  submitForMs: number;
}

/**
 * One failover case: starts `topology`, a batch stack on it with WAIT 1 on acknowledged
 * writes, checks streaming and waiting submits, runs a batch through `kill` (which
 * SIGKILLs the master it picks) while submitting native jobs, and asserts that no
 * custom_id or acknowledged job was lost, duplicated or failed. The topology and the stack
 * are stopped when the test ends. Returns them for the case's own checks (who took over).
 */
export async function runFaultCase<T extends FaultTopology>(
  t: TestContext,
  topology: () => Promise<T>,
  kill: (topology: T, stack: BatchStack) => Promise<void>,
  options: FaultCaseOptions,
): Promise<{ topology: T; stack: BatchStack; report: FaultReport }> {
  const redis = await topology();
  const stack = await startBatchStack({
    redisUrl: redis.url,
    env: { CORRAL_REDIS_WAIT_REPLICAS: "1", CORRAL_REDIS_WAIT_TIMEOUT_MS: "1000" },
  }).catch(async (error: unknown) => {
    await redis.stop();
    throw error;
  });
  t.after(async () => {
    try {
      await stack.close();
    } finally {
      await redis.stop();
    }
  });
  const before = await checkStreamingAndWaits(stack);
  assert.ok(before.chunks > 0, "a streamed chat sent text");
  assert.equal(before.waited, "succeeded", "a waiting submit was woken by its job-events message");
  const report = await runBatchThroughFault(stack, {
    label: options.label,
    submitForMs: options.submitForMs,
    fault: () => kill(redis, stack),
  });
  assert.equal(report.lost, 0, "no custom_id lost");
  assert.equal(report.duplicated, 0, "no custom_id twice");
  assert.equal(report.failed, 0, "no line failed (attempts remained)");
  assert.ok(report.acknowledged > 0, "some submits were acknowledged around the failover");
  assert.equal(report.acknowledgedLost, 0, "no acknowledged job lost");
  assert.equal(report.acknowledgedFailed, 0, "no acknowledged job failed");
  return { topology: redis, stack, report };
}
