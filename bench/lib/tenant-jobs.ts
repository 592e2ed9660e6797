import type { JobRecord } from "@corral/shared";
import type { JsonClient } from "./http-client.js";
import { sleep } from "./stats.js";

/** One job to submit at a time from the start, as one tenant (through that tenant's client). */
export interface ScheduledJob {
  tenant: string;
  /** ms after the start. */
  at: number;
  body: { model: string; prompt: string; max_tokens: number; temperature: number };
}

/**
 * Submits every job at its time through its tenant's client (`POST /v1/jobs`), the jobs
 * due at one instant together with at most `concurrency` submits in flight, an instant
 * never waiting for an earlier one's submits. Each job is long-polled from its 202 until
 * it is final; resolves with every final record once all are (a job that ends other than
 * succeeded throws), and when each job's 202 arrived (ms since the epoch, by job id): by
 * then the scheduler has queued it.
 */
export async function runScheduledJobs(
  clients: ReadonlyMap<string, JsonClient>,
  jobs: readonly ScheduledJob[],
  options: { concurrency?: number; waitSeconds?: number } = {},
): Promise<{ started: number; records: JobRecord[]; accepted: Map<string, number> }> {
  const waitSeconds = options.waitSeconds ?? 30;
  const concurrency = options.concurrency ?? 16;
  const instants = new Map<number, ScheduledJob[]>();
  for (const job of jobs) instants.set(job.at, [...(instants.get(job.at) ?? []), job]);
  const started = Date.now();
  const results: Promise<JobRecord>[] = [];
  const acceptedAt = new Map<string, number>();

  const one = async (job: ScheduledJob, accepted: () => void): Promise<JobRecord> => {
    const client = clients.get(job.tenant);
    if (!client) throw new Error(`no client for tenant ${job.tenant}`);
    let reply;
    try {
      reply = await client.post<JobRecord>("/v1/jobs", job.body);
    } finally {
      accepted();
    }
    if (reply.status !== 202) throw new Error(`POST /v1/jobs answered ${reply.status}: ${JSON.stringify(reply.body)}`);
    acceptedAt.set(reply.body.id, Date.now());
    for (;;) {
      const polled = await client.longPoll<JobRecord>(`/v1/jobs/${reply.body.id}?wait=${waitSeconds}`);
      if (polled.status !== 200) throw new Error(`GET /v1/jobs/${reply.body.id} answered ${polled.status}`);
      const record = polled.body;
      if (record.status === "succeeded") return record;
      if (record.status === "failed" || record.status === "cancelled")
        throw new Error(`job ${record.id} ended ${record.status}: ${JSON.stringify(record.error)}`);
    }
  };

  const submitInstant = async (at: number, due: ScheduledJob[]): Promise<void> => {
    const ahead = started + at - Date.now();
    if (ahead >= 1) await sleep(ahead);
    let next = 0;
    const lane = async () => {
      while (next < due.length) {
        const job = due[next++]!;
        await new Promise<void>((accepted) => {
          const result = one(job, accepted);
          result.catch(() => undefined);
          results.push(result);
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, due.length) }, lane));
  };

  await Promise.all([...instants].sort((a, b) => a[0] - b[0]).map(([at, due]) => submitInstant(at, due)));
  return { started, records: await Promise.all(results), accepted: acceptedAt };
}
