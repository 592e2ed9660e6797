import { useRef } from "preact/hooks";
import { api, type List, type WorkerState } from "../api";
import { Bar } from "../bar";
import { bytes, errorText, percent, time } from "../format";
import { usePoll } from "../use-poll";

/** A heartbeat older than this marks the slot stale (workers beat every few seconds). */
const STALE_MS = 15_000;
/** A slot whose heartbeat key expired stays on screen as offline this long. */
const OFFLINE_KEEP_MS = 5 * 60_000;

interface Seen {
  worker: WorkerState;
  lastSeen: number;
}

/**
 * Every worker slot from `GET /v1/workers`, polled every 2 s: GPUs with VRAM bars,
 * utilisation and temperature, the models each slot holds and its busy sequences. A tenant
 * gets what the API shows tenants (no host details, only its own active jobs).
 */
export function ClusterView(props: { admin: boolean }) {
  const seen = useRef(new Map<string, Seen>());
  const poll = usePoll((signal) => api<List<WorkerState>>("GET", "/v1/workers", undefined, signal), 2000);

  const now = Date.now();
  if (poll.data) {
    for (const worker of poll.data.data) seen.current.set(worker.id, { worker, lastSeen: now });
    for (const [id, entry] of seen.current) if (now - entry.lastSeen > OFFLINE_KEEP_MS) seen.current.delete(id);
  }
  const live = new Set(poll.data?.data.map((w) => w.id) ?? []);
  const slots = [...seen.current.values()].sort((a, b) => a.worker.id.localeCompare(b.worker.id));
  const hosts = new Map<string, Seen[]>();
  for (const slot of slots) {
    const host = slot.worker.host || "Workers";
    hosts.set(host, [...(hosts.get(host) ?? []), slot]);
  }

  return (
    <section aria-labelledby="cluster-title">
      <h1 id="cluster-title">Cluster</h1>
      <p class="muted" aria-live="polite">
        {live.size} slot{live.size === 1 ? "" : "s"} online · updated every 2 s
        {props.admin ? "" : " · host details are shown to the admin only"}
      </p>
      {poll.error && (
        <p class="error" role="alert">
          Could not read the workers: {errorText(poll.error)}
        </p>
      )}
      {poll.data && slots.length === 0 && <p>No worker is online. Start one with `corral worker`.</p>}
      {[...hosts].map(([host, list]) => (
        <div class="host" key={host}>
          <h2>{host}</h2>
          {list[0]?.worker.host_info && (
            <p class="muted">
              {list[0].worker.host_info.cpu_model} · {list[0].worker.host_info.cpu_cores} cores ·{" "}
              {bytes(list[0].worker.host_info.memory_total_bytes)} RAM · {list[0].worker.host_info.os}
            </p>
          )}
          <div class="cards">
            {list.map(({ worker, lastSeen }) => (
              <SlotCard key={worker.id} worker={worker} online={live.has(worker.id)} lastSeen={lastSeen} now={now} />
            ))}
          </div>
        </div>
      ))}
    </section>
  );
}

function SlotCard(props: { worker: WorkerState; online: boolean; lastSeen: number; now: number }) {
  const w = props.worker;
  const stale = props.online && props.now - w.updated_at > STALE_MS;
  const condition = !props.online ? "offline" : stale ? "stale" : w.state;
  const used = w.budget_total_bytes - w.budget_free_bytes;
  return (
    <article class={`card slot ${condition}`} aria-label={`Slot ${w.id}`} data-testid="slot">
      <h3>
        {w.id} <span class={`badge ${condition}`}>{condition}</span>
      </h3>
      <p class="muted">
        {w.mode === "gpu" ? "GPU" : "CPU"} slot {w.slot} · v{w.version}
        {!props.online && ` · last seen ${time(props.lastSeen)}`}
        {stale && ` · last heartbeat ${time(w.updated_at)}`}
      </p>
      {w.gpus.map((gpu) => (
        <div class="gpu" key={gpu.index}>
          <p>
            <strong>
              GPU {gpu.index}: {gpu.name}
            </strong>{" "}
            · utilisation {percent(gpu.utilization_ratio)} · {gpu.temperature_celsius ?? "–"} °C
          </p>
          <Bar
            label="VRAM used"
            value={gpu.memory_used_bytes ?? 0}
            max={gpu.memory_total_bytes ?? 0}
            text={`${bytes(gpu.memory_used_bytes)} used, ${bytes(gpu.memory_free_bytes)} free of ${bytes(gpu.memory_total_bytes)}`}
          />
        </div>
      ))}
      <Bar
        label={w.mode === "gpu" ? "Slot budget" : "Memory budget"}
        value={used}
        max={w.budget_total_bytes}
        text={`${bytes(used)} used, ${bytes(w.budget_free_bytes)} free of ${bytes(w.budget_total_bytes)}`}
      />
      <h4>Models</h4>
      {w.loaded_models.length === 0 ? (
        <p class="muted">No model loaded.</p>
      ) : (
        <ul class="models">
          {w.loaded_models.map((m) => (
            <li key={m.model} data-testid="loaded-model">
              <strong>{m.model}</strong> · {m.busy_sequences} of {m.sequences} sequence
              {m.sequences === 1 ? "" : "s"} busy · {bytes(m.requirement_bytes)}
            </li>
          ))}
        </ul>
      )}
      {w.active_jobs.length > 0 && (
        <p>
          Active jobs you can see: <span class="mono">{w.active_jobs.join(", ")}</span>
        </p>
      )}
    </article>
  );
}
