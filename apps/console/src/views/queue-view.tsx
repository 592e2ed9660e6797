import { useState } from "preact/hooks";
import { api, type Job, type List, type QueueModel } from "../api";
import { duration, errorText, time } from "../format";
import { usePoll } from "../use-poll";

/** Queued jobs whose place is read one by one (`GET /v1/jobs/:id` has the position). */
const POSITIONS_READ = 20;

interface QueueData {
  models: QueueModel[];
  queued: Job[];
  running: Job[];
  recent: Job[];
}

async function readQueue(signal: AbortSignal): Promise<QueueData> {
  const [models, queued, running, recent] = await Promise.all([
    api<List<QueueModel>>("GET", "/v1/queue", undefined, signal),
    api<List<Job>>("GET", "/v1/jobs?status=queued&limit=100", undefined, signal),
    api<List<Job>>("GET", "/v1/jobs?status=running&limit=100", undefined, signal),
    api<List<Job>>("GET", "/v1/jobs?limit=20", undefined, signal),
  ]);
  // Oldest first: the jobs nearest the front of their lanes.
  const oldest = [...queued.data].reverse();
  const placed = await Promise.all(
    oldest.map((job, i) =>
      i < POSITIONS_READ
        ? api<Job>("GET", `/v1/jobs/${encodeURIComponent(job.id)}`, undefined, signal).catch(() => job)
        : Promise.resolve(job),
    ),
  );
  return { models: models.data, queued: placed, running: running.data, recent: recent.data };
}

/**
 * Per model: jobs waiting and running over all tenants (counts only; `GET /v1/queue`) and
 * the expected wait. Then the signed-in tenant's own jobs with status, queue position,
 * estimated start and a cancel button.
 */
export function QueueView() {
  const poll = usePoll(readQueue, 2000);
  const [message, setMessage] = useState<string | null>(null);

  const cancel = async (job: Job) => {
    setMessage(null);
    try {
      const after = await api<Job>("DELETE", `/v1/jobs/${encodeURIComponent(job.id)}`);
      setMessage(`Job ${job.id} is ${after.status === "cancelled" ? "cancelled" : "being cancelled"}.`);
    } catch (caught) {
      setMessage(`Could not cancel ${job.id}: ${errorText(caught)}`);
    }
    poll.refresh();
  };

  const data = poll.data;
  const mine = (model: string, list: Job[] | undefined) => list?.filter((j) => j.model === model).length ?? 0;
  const active = data ? [...data.running, ...data.queued] : [];
  const finished = data?.recent.filter((j) => j.status !== "queued" && j.status !== "running") ?? [];

  return (
    <section aria-labelledby="queue-title">
      <h1 id="queue-title">Queue</h1>
      {poll.error && (
        <p class="error" role="alert">
          Could not read the queue: {errorText(poll.error)}
        </p>
      )}
      <h2>Models</h2>
      <div class="table-wrap">
        <table data-testid="queue-models">
          <caption class="sr-only">Jobs waiting and running per model, over all tenants</caption>
          <thead>
            <tr>
              <th scope="col">Model</th>
              <th scope="col">Waiting</th>
              <th scope="col">Running</th>
              <th scope="col">Of which yours</th>
              <th scope="col">Expected wait</th>
            </tr>
          </thead>
          <tbody>
            {data?.models.map((m) => (
              <tr key={m.model}>
                <th scope="row">{m.model}</th>
                <td>{m.waiting}</td>
                <td>{m.running}</td>
                <td>
                  {mine(m.model, data.queued)} waiting, {mine(m.model, data.running)} running
                </td>
                <td>
                  {m.expected_wait_ms === null
                    ? "unknown"
                    : m.expected_wait_ms === 0
                      ? "none"
                      : `≈ ${duration(m.expected_wait_ms)}`}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p class="muted">Other tenants' jobs are counted, never listed.</p>

      <h2>Your queued and running jobs</h2>
      <p aria-live="polite" class="status-line">
        {message}
      </p>
      {data && active.length === 0 && <p>You have no job queued or running.</p>}
      {active.length > 0 && (
        <div class="table-wrap">
          <table data-testid="my-jobs">
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Model</th>
                <th scope="col">Status</th>
                <th scope="col">Position</th>
                <th scope="col">Estimated start</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {active.map((job) => (
                <tr key={job.id} data-job-id={job.id}>
                  <td class="mono">{job.id}</td>
                  <td>{job.model}</td>
                  <td>
                    <span class={`badge ${job.status}`}>{job.status}</span> <span class="muted">{job.source}</span>
                  </td>
                  <td>{job.queue_position ?? "–"}</td>
                  <td>{job.estimated_start_at ? time(job.estimated_start_at) : "–"}</td>
                  <td>
                    <button type="button" onClick={() => void cancel(job)} aria-label={`Cancel job ${job.id}`}>
                      Cancel
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      <h2>Your recent jobs</h2>
      {finished.length === 0 ? (
        <p class="muted">None yet.</p>
      ) : (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Model</th>
                <th scope="col">Status</th>
                <th scope="col">Slot</th>
                <th scope="col">Finished</th>
              </tr>
            </thead>
            <tbody>
              {finished.map((job) => (
                <tr key={job.id} data-job-id={job.id}>
                  <td class="mono">{job.id}</td>
                  <td>{job.model}</td>
                  <td>
                    <span class={`badge ${job.status}`}>{job.status}</span>
                    {job.error && <span class="muted"> {job.error.code}</span>}
                  </td>
                  <td>{job.worker ?? "–"}</td>
                  <td>{time(job.finished_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
