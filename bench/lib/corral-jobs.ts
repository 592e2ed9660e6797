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
  /** When the 202 arrived; null when the submit itself waited for the result (`wait` option). */
  acceptedAt: number | null;
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
  /**
   * Submit and wait (`POST /v1/jobs?wait=`): one request per job, answered with the
   * final record, instead of a submit and a long poll. A job still not final when the
   * wait ends is long-polled as usual. @defaultValue false
   */
  submitAndWait?: boolean;
}

/**
 * Submits every body through `POST /v1/jobs`, long-polls each job (`GET /v1/jobs/:id?wait=`)
 * from the moment it is accepted (or, with `submitAndWait`, has the submit itself wait for
 * the result), and resolves once all are final.
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

  const submitPath = options.submitAndWait ? `/v1/jobs?wait=${waitSeconds}` : "/v1/jobs";
  const final = (submitAt: number, acceptedAt: number | null, record: JobRecord): JobTiming | null => {
    if (record.status !== "succeeded" && record.status !== "failed" && record.status !== "cancelled") return null;
    if (record.status !== "succeeded")
      throw new Error(`job ${record.id} ended ${record.status}: ${JSON.stringify(record.error)}`);
    return { submitAt, acceptedAt, resultAt: Date.now(), record };
  };

  const one = async (body: JobBody, onAccepted: () => void = () => {}): Promise<JobTiming> => {
    const submitAt = Date.now();
    let accepted;
    try {
      accepted = await (options.submitAndWait
        ? client.longPost<JobRecord>(submitPath, body)
        : client.post<JobRecord>(submitPath, body));
    } finally {
      onAccepted();
    }
    const acceptedAt = options.submitAndWait ? null : Date.now();
    // 200: the submit waited and the job is final; 202: queued (or still running).
    if (accepted.status !== 202 && !(options.submitAndWait && accepted.status === 200))
      throw new Error(`POST ${submitPath} answered ${accepted.status}: ${JSON.stringify(accepted.body)}`);
    const done = final(submitAt, acceptedAt, accepted.body);
    if (done) return done;
    const id = accepted.body.id;
    for (;;) {
      const polled = await client.longPoll<JobRecord>(`/v1/jobs/${id}?wait=${waitSeconds}`);
      if (polled.status !== 200) throw new Error(`GET /v1/jobs/${id} answered ${polled.status}`);
      const finished = final(submitAt, acceptedAt, polled.body);
      if (finished) return finished;
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
