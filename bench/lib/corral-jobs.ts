import type { JobRecord } from "@corral/shared";
import type { JsonClient } from "./http-client.js";
import { sleep } from "./stats.js";

/** The body of one `POST /v1/jobs`. */
export interface JobBody {
  model: string;
  prompt: string;
  max_tokens: number;
  temperature: number;
}

/** One job as the client saw it. Times are ms since the epoch (Date.now, the clock the records use). */
export interface JobTiming {
  /** Just before the POST was sent. */
  submitAt: number;
  /** When the 202 arrived. */
  acceptedAt: number;
  /** When the long poll answered with the final record. */
  resultAt: number;
  record: JobRecord;
}

export interface RunJobsOptions {
  /** Open loop: submits at this many jobs per second regardless of completions. Otherwise a burst. */
  ratePerSecond?: number;
  /** Burst: submits in flight at once. @defaultValue 16 */
  submitConcurrency?: number;
  /** Seconds per long poll. @defaultValue 30 */
  waitSeconds?: number;
}

/**
 * Submits every body through `POST /v1/jobs`, long-polls each job (`GET /v1/jobs/:id?wait=`)
 * from the moment it is accepted, and resolves once all are final.
 */
export async function runCorralJobs(
  client: JsonClient,
  bodies: readonly JobBody[],
  options: RunJobsOptions = {},
): Promise<{ wallMs: number; jobs: JobTiming[] }> {
  const waitSeconds = options.waitSeconds ?? 30;
  const results: Promise<JobTiming>[] = [];
  const started = Date.now();
  // Rejections surface through Promise.all below; mark them handled meanwhile.
  const track = (job: Promise<JobTiming>) => {
    job.catch(() => undefined);
    results.push(job);
  };

  const one = async (body: JobBody, onAccepted: () => void = () => {}): Promise<JobTiming> => {
    const submitAt = Date.now();
    let accepted;
    try {
      accepted = await client.post<JobRecord>("/v1/jobs", body);
    } finally {
      onAccepted();
    }
    const acceptedAt = Date.now();
    if (accepted.status !== 202)
      throw new Error(`POST /v1/jobs answered ${accepted.status}: ${JSON.stringify(accepted.body)}`);
    const id = accepted.body.id;
    for (;;) {
      const polled = await client.longPoll<JobRecord>(`/v1/jobs/${id}?wait=${waitSeconds}`);
      if (polled.status !== 200) throw new Error(`GET /v1/jobs/${id} answered ${polled.status}`);
      const record = polled.body;
      if (record.status === "succeeded" || record.status === "failed" || record.status === "cancelled") {
        if (record.status !== "succeeded")
          throw new Error(`job ${id} ended ${record.status}: ${JSON.stringify(record.error)}`);
        return { submitAt, acceptedAt, resultAt: Date.now(), record };
      }
    }
  };

  if (options.ratePerSecond !== undefined) {
    const interval = 1000 / options.ratePerSecond;
    const t0 = performance.now();
    for (const [i, body] of bodies.entries()) {
      const ahead = t0 + i * interval - performance.now();
      if (ahead >= 1) await sleep(ahead);
      track(one(body));
    }
  } else {
    // A submit lane is free again once its 202 is in; the long polls run on meanwhile.
    let next = 0;
    const lane = async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        await new Promise<void>((accepted) => track(one(body, accepted)));
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.submitConcurrency ?? 16, bodies.length) }, lane));
  }
  const jobs = await Promise.all(results);
  return { wallMs: Date.now() - started, jobs };
}
