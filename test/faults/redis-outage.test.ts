import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startBatchStack, type BatchStack } from "../batch/support/harness.js";
import { startRedisServer, type RedisServer } from "../support/redis.js";
import { runBatchThroughFault } from "./support/fault-run.js";

const OUTAGE_MS = 30_000;
/** The scheduler's request connection's command timeout in this case (the default is 5 s). */
const COMMAND_TIMEOUT_MS = 1000;
/** A refused submit must be answered within this: the command timeout, plus room for a loaded 2-core machine. */
const BOUNDED_MS = COMMAND_TIMEOUT_MS + 2000;

describe("a single Redis unreachable for 30 s (SIGSTOP) mid-batch, with submits before, through and after it", () => {
  let server: RedisServer | undefined;
  let stack: BatchStack | undefined;

  after(async () => {
    server?.process.kill("SIGCONT");
    try {
      await stack?.close();
    } finally {
      await server?.stop();
    }
  });

  test("submits in the outage get 503 redis_unavailable with Retry-After in bounded time; nothing accepted is lost or finishes twice; no process restarts", async (t) => {
    server = await startRedisServer();
    stack = await startBatchStack({
      redisUrl: server.url,
      env: { CORRAL_REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS) },
    });
    const worker = stack.worker!;
    const restartsBefore = worker.slots.map((slot) => slot.restarts);
    const redis = server;
    const url = stack.url;
    const inOutage: { ready?: { status: number; retryAfter: string | null } } = {};
    const report = await runBatchThroughFault(stack, {
      label: "outage-30s",
      submitBeforeFault: 6,
      // Through the outage and 10 s past it: the submits after it must be acknowledged again.
      submitForMs: OUTAGE_MS + 10_000,
      countFinals: true,
      async fault() {
        redis.process.kill("SIGSTOP");
        const stoppedAt = Date.now();
        await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS / 2));
        const ready = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(BOUNDED_MS) });
        inOutage.ready = { status: ready.status, retryAfter: ready.headers.get("retry-after") };
        await new Promise((resolve) => setTimeout(resolve, stoppedAt + OUTAGE_MS - Date.now()));
        redis.process.kill("SIGCONT");
      },
    });
    t.diagnostic(
      `refusals ${JSON.stringify(report.refusals)}, slowest ${report.slowestRefusalMs} ms; ` +
        `batch progress again ${report.batchRecoveryMs} ms after the stop; ${report.acknowledged} acknowledged ` +
        `(${report.acknowledgedBefore} before), ${report.acknowledgedRerun} of them ran twice`,
    );

    assert.equal(report.lost, 0, "no custom_id lost");
    assert.equal(report.duplicated, 0, "no custom_id twice");
    assert.equal(report.failed, 0, "no line failed (attempts remained)");
    assert.equal(report.acknowledgedLost, 0, "no acknowledged job lost");
    assert.equal(report.acknowledgedFailed, 0, "no acknowledged job failed");
    assert.equal(report.finalTwice, 0, "no acknowledged job finished twice");

    assert.equal(inOutage.ready?.status, 503, "/readyz is 503 in the outage");
    assert.ok(Number(inOutage.ready?.retryAfter) > 0, "/readyz carries Retry-After in the outage");
    assert.ok(report.refusedSubmits > 0, "the outage refused submits");
    assert.deepEqual(
      Object.keys(report.refusals),
      ["503 redis_unavailable"],
      "every refusal is a 503 redis_unavailable",
    );
    assert.equal(report.refusedWithoutRetryAfter, 0, "every refusal carries Retry-After");
    assert.ok(report.slowestRefusalMs! < BOUNDED_MS, `a refusal took ${report.slowestRefusalMs} ms`);
    assert.ok(
      report.submitRecoveryMs !== null && report.submitRecoveryMs >= OUTAGE_MS,
      "submits acknowledged again after it",
    );
    assert.ok(report.acknowledged > report.acknowledgedBefore, "jobs were acknowledged after the outage");

    // Recovered in place: no slot restarted, and the same scheduler is ready.
    assert.deepEqual(
      worker.slots.map((slot) => slot.restarts),
      restartsBefore,
      "no slot restarted",
    );
    const ready = await fetch(`${stack.url}/readyz`);
    assert.equal(ready.status, 200, "the scheduler is ready again");
  });
});
