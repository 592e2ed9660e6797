import type { JobRecord } from "@corral/shared";

/**
 * Corral's details of a request's jobs as `x-corral-*` headers, one comma-separated value
 * per job in choice order (`-` where a job has none). A header whose values are all
 * missing is left out. With `timings`, the finished jobs' phase timings are added.
 */
export function corralHeaders(
  records: readonly JobRecord[],
  options: { timings?: boolean } = {},
): Record<string, string> {
  const headers: Record<string, string> = { "x-corral-job-id": records.map((r) => r.id).join(",") };
  const add = (name: string, values: readonly (string | number | null | undefined)[]) => {
    if (values.every((v) => v === null || v === undefined)) return;
    headers[name] = values.map((v) => (v === null || v === undefined ? "-" : String(v))).join(",");
  };
  add(
    "x-corral-worker",
    records.map((r) => r.worker),
  );
  add(
    "x-corral-gpu",
    records.map((r) => r.gpu),
  );
  add(
    "x-corral-queue-ms",
    records
      .map((r) => r.result?.timings.queue_ms ?? (r.started_at !== null ? r.started_at - r.created_at : null))
      .map(ms),
  );
  if (options.timings) {
    add(
      "x-corral-load-ms",
      records.map((r) => ms(r.result?.timings.load_ms)),
    );
    add(
      "x-corral-ttft-ms",
      records.map((r) => ms(r.result?.timings.ttft_ms)),
    );
    add(
      "x-corral-generation-ms",
      records.map((r) => ms(r.result?.timings.generation_ms)),
    );
  }
  return headers;
}

const ms = (value: number | null | undefined): number | null =>
  value === null || value === undefined ? null : Math.round(value);

/**
 * The `103 Early Hints` a request sends as soon as its jobs are queued: `x-corral-job-id`
 * (comma-separated, choice order) and a `link` to each job (Node sends no early hints
 * without one).
 */
export function jobEarlyHints(ids: readonly string[]): Record<string, string | string[]> {
  return {
    link: ids.map((id) => `</v1/jobs/${encodeURIComponent(id)}>; rel="related"`),
    "x-corral-job-id": ids.join(","),
  };
}
