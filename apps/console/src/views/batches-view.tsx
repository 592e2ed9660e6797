import { useState } from "preact/hooks";
import { api, downloadFile, uploadFile, type Batch, type Job, type List, type Quota } from "../api";
import { Bar } from "../bar";
import { duration, errorText, time } from "../format";
import { usePoll } from "../use-poll";

const FINAL = new Set(["completed", "failed", "expired", "cancelled"]);
const ENDPOINTS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"] as const;

interface Data {
  batches: Batch[];
  quota: Quota;
  queued: List<Job>;
}

async function read(signal: AbortSignal): Promise<Data> {
  const [batches, quota, queued] = await Promise.all([
    api<List<Batch>>("GET", "/v1/batches?limit=50", undefined, signal),
    api<Quota>("GET", "/v1/quota", undefined, signal),
    api<List<Job>>("GET", "/v1/jobs?status=queued&limit=100", undefined, signal),
  ]);
  return { batches: batches.data, quota, queued };
}

/** The tenant's batches (progress, ETA, downloads, cancel), a JSONL upload that starts one, and the quota. */
export function BatchesView() {
  const poll = usePoll(read, 2000);
  const [message, setMessage] = useState<string | null>(null);

  const act = async (what: () => Promise<unknown>, done: string) => {
    setMessage(null);
    try {
      await what();
      setMessage(done);
    } catch (caught) {
      setMessage(errorText(caught));
    }
    poll.refresh();
  };

  return (
    <section aria-labelledby="batches-title">
      <h1 id="batches-title">Batches and quota</h1>
      {poll.error && (
        <p class="error" role="alert">
          Could not read batches or quota: {errorText(poll.error)}
        </p>
      )}
      <div class="columns">
        <div>
          <UploadForm onStarted={(id) => void act(async () => undefined, `Batch ${id} started.`)} />
          {poll.data && <QuotaPanel data={poll.data} />}
        </div>
        <div>
          <h2>Your batches</h2>
          <p aria-live="polite" class="status-line">
            {message}
          </p>
          {poll.data?.batches.length === 0 && <p>No batch yet.</p>}
          <ul class="plain">
            {poll.data?.batches.map((batch) => (
              <li key={batch.id}>
                <BatchCard
                  batch={batch}
                  onCancel={() =>
                    void act(
                      () => api("POST", `/v1/batches/${encodeURIComponent(batch.id)}/cancel`),
                      `Batch ${batch.id} is cancelling.`,
                    )
                  }
                  onDownload={(id, name) => void act(() => downloadFile(id, name), `Downloaded ${name}.`)}
                />
              </li>
            ))}
          </ul>
        </div>
      </div>
    </section>
  );
}

function BatchCard(props: { batch: Batch; onCancel: () => void; onDownload: (id: string, name: string) => void }) {
  const b = props.batch;
  const { total, completed, failed } = b.request_counts;
  const done = completed + failed;
  const ratio = total > 0 ? done / total : FINAL.has(b.status) ? 1 : 0;
  let eta: string | null = null;
  if (b.status === "in_progress" && b.in_progress_at && done > 0 && done < total) {
    const elapsed = Date.now() - b.in_progress_at * 1000;
    eta = duration((elapsed / done) * (total - done));
  }
  return (
    <article class="card" aria-label={`Batch ${b.id}`} data-testid="batch" data-batch-id={b.id}>
      <h3>
        <span class="mono">{b.id}</span> <span class={`badge ${b.status}`}>{b.status}</span>
      </h3>
      <p class="muted">
        {b.endpoint} · created {time(b.created_at * 1000)}
        {b.completed_at && ` · finished ${time(b.completed_at * 1000)}`}
      </p>
      <Bar
        label="Progress"
        value={done}
        max={total}
        text={`${Math.round(ratio * 100)}% · ${completed} done, ${failed} failed of ${total}${eta ? ` · ETA ${eta}` : ""}`}
        warn={failed > 0}
      />
      <div class="actions">
        {b.output_file_id && (
          <button type="button" onClick={() => props.onDownload(b.output_file_id!, `${b.id}-output.jsonl`)}>
            Download output
          </button>
        )}
        {b.error_file_id && (
          <button type="button" onClick={() => props.onDownload(b.error_file_id!, `${b.id}-errors.jsonl`)}>
            Download errors
          </button>
        )}
        {!FINAL.has(b.status) && b.status !== "cancelling" && (
          <button type="button" class="danger" onClick={props.onCancel} aria-label={`Cancel batch ${b.id}`}>
            Cancel
          </button>
        )}
      </div>
    </article>
  );
}

function UploadForm(props: { onStarted: (id: string) => void }) {
  const [file, setFile] = useState<File | null>(null);
  const [endpoint, setEndpoint] = useState<string>(ENDPOINTS[0]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const choose = async (chosen: File | null) => {
    setFile(chosen);
    setError(null);
    if (!chosen) return;
    // The endpoint defaults to the first line's `url`, as `corral batch submit` does.
    const head = await chosen.slice(0, 64 * 1024).text();
    try {
      const url = (JSON.parse(head.split("\n")[0] ?? "") as { url?: string }).url;
      if (url && (ENDPOINTS as readonly string[]).includes(url)) setEndpoint(url);
    } catch {
      // The server checks every line; it says what is wrong.
    }
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    if (!file) return;
    setBusy(true);
    setError(null);
    try {
      const uploaded = await uploadFile(file);
      const batch = await api<Batch>("POST", "/v1/batches", {
        input_file_id: uploaded.id,
        endpoint,
        completion_window: "24h",
      });
      props.onStarted(batch.id);
      (event.target as HTMLFormElement).reset();
      setFile(null);
    } catch (caught) {
      setError(errorText(caught));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="card" onSubmit={submit} aria-labelledby="upload-title">
      <h2 id="upload-title">Start a batch</h2>
      <label for="batch-file">JSONL file (one request per line)</label>
      <input
        id="batch-file"
        type="file"
        accept=".jsonl,application/jsonl,application/x-ndjson,text/plain"
        required
        onChange={(e) => void choose(e.currentTarget.files?.[0] ?? null)}
      />
      <label for="batch-endpoint">Endpoint</label>
      <select id="batch-endpoint" value={endpoint} onChange={(e) => setEndpoint(e.currentTarget.value)}>
        {ENDPOINTS.map((e) => (
          <option key={e} value={e}>
            {e}
          </option>
        ))}
      </select>
      <button type="submit" disabled={!file || busy}>
        {busy ? "Uploading…" : "Upload and start"}
      </button>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

function QuotaPanel(props: { data: Data }) {
  const q = props.data.quota;
  const queued = props.data.queued.data.length;
  const queuedText = `${queued}${props.data.queued.has_more ? "+" : ""}`;
  return (
    <section class="card" aria-labelledby="quota-title" data-testid="quota">
      <h2 id="quota-title">Quota</h2>
      {q.queued_jobs.limit === null ? (
        <p>Queued jobs: {queuedText} (no limit)</p>
      ) : (
        <Bar
          label="Queued jobs"
          value={queued}
          max={q.queued_jobs.limit}
          text={`${queuedText} of ${q.queued_jobs.limit}`}
        />
      )}
      {q.active_jobs.limit === null ? (
        <p>Running jobs: no limit</p>
      ) : (
        <Bar
          label="Running jobs"
          value={q.active_jobs.running ?? 0}
          max={q.active_jobs.limit}
          text={`${q.active_jobs.running ?? 0} of ${q.active_jobs.limit}`}
        />
      )}
      {q.daily_tokens.limit === null ? (
        <p>Tokens today: {q.daily_tokens.used.toLocaleString()} (no daily budget)</p>
      ) : (
        <Bar
          label="Tokens today"
          value={q.daily_tokens.used}
          max={q.daily_tokens.limit}
          warn={q.daily_tokens.used >= q.daily_tokens.limit}
          text={`${q.daily_tokens.used.toLocaleString()} of ${q.daily_tokens.limit.toLocaleString()} (resets ${time(q.daily_tokens.resets_at * 1000)})`}
        />
      )}
      <p>
        Fair share: weight {q.fair_share.share}
        {q.fair_share.counter === null
          ? ", no job served yet"
          : `, ${Math.round(q.fair_share.counter).toLocaleString()} weighted tokens served (the lowest waiting tenant goes first)`}
      </p>
    </section>
  );
}
