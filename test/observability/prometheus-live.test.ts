// Every query of the Grafana dashboard and every alert expression, run by a real Prometheus
// scraping a real scheduler and a real worker after a small load. A dashboard query that
// names a metric nobody exports returns no series and fails this test.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { METRIC } from "@corral/shared";
import { repoRootDir } from "../support/models.js";
import { parseExposition } from "./support/exposition.js";
import { MODEL } from "./support/fixtures.js";
import { RunningPrometheus, prometheusAvailable } from "./support/prometheus.js";
import {
  alertQueries,
  checkQueries,
  dashboardQueries,
  formatProblems,
  metricNames,
  readDashboard,
  substituteVariables,
  variableQueries,
  type NamedQuery,
} from "./support/queries.js";
import { batchApiExists, runBatch, runLoad, startStack, type Stack } from "./support/stack.js";

const SCRAPE_INTERVAL_S = 1;
const dashboardPath = resolve(repoRootDir, "deploy/grafana/dashboards/corral.json");
const alertsPath = resolve(repoRootDir, "deploy/prometheus/alerts.yml");

/** Grafana's "All" for the template variables (they are used with =~). */
const ALL = { host: ".*", gpu: ".*", model: ".*", DS_PROMETHEUS: "prometheus" };

/**
 * The Batches row's metrics come with the batch API. Until the scheduler exports them,
 * the row's queries must parse but may be empty; once it does, they must return series
 * like every other panel (the load then runs a short batch).
 */
const batchFamilies = Object.values(METRIC).filter((name) => name.startsWith("corral_batch"));

/**
 * Counters of events the test cannot cause on a CPU machine, allowed to be empty. None
 * now: the worker starts corral_oom_releases_total at 0 for each model it loads.
 */
const EVENT_ONLY: ReadonlyMap<string, string> = new Map();

const missing = prometheusAvailable() ? null : "the prometheus binary is not installed (apt-get install prometheus)";

describe("dashboard and alert queries against a live Prometheus", { skip: missing ?? false }, () => {
  let stack: Stack;
  let prometheus: RunningPrometheus;
  let batchMetricsExported = false;
  /** Metric families the scheduler and the worker export (HELP/TYPE seen), after the load. */
  const exportedFamilies = new Set<string>();
  const emptyAllowed = (query: NamedQuery): string | null => {
    const names = metricNames(query.expr);
    const ok = names.length > 0 && names.every((name) => EVENT_ONLY.has(name) && exportedFamilies.has(name));
    return ok ? names.map((name) => `${name}: ${EVENT_ONLY.get(name)}`).join("; ") : null;
  };

  before(async () => {
    stack = await startStack();
    const hostPort = (url: string) => new URL(url).host;
    prometheus = await RunningPrometheus.start({
      scrapeIntervalSeconds: SCRAPE_INTERVAL_S,
      jobs: [
        { job: "corral-scheduler", targets: [hostPort(stack.scheduler.url)] },
        { job: "corral-worker", targets: [hostPort(stack.worker.metricsUrl)] },
      ],
    });
    // A scrape before the load, so counters that appear during it have a starting point.
    await prometheus.waitForScrapes(Date.now(), 1, SCRAPE_INTERVAL_S);
    const outcome = await runLoad(stack);
    assert.deepEqual(outcome, { succeeded: 5, failed: 1 }, "the load's jobs");
    if (await batchApiExists(stack)) assert.equal(await runBatch(stack), "completed", "the batch");
    await prometheus.waitForScrapes(Date.now(), 2, SCRAPE_INTERVAL_S);
    for (const url of [`${stack.scheduler.url}/metrics`, stack.worker.metricsUrl]) {
      const families = parseExposition(await (await fetch(url)).text());
      for (const name of families.keys()) exportedFamilies.add(name);
    }
    batchMetricsExported = batchFamilies.some((name) => exportedFamilies.has(name));
  });

  after(async () => {
    await prometheus?.close();
    await stack?.close();
  });

  const dashboard = readDashboard(dashboardPath);
  const substituted = (queries: NamedQuery[]) => queries.map((q) => ({ ...q, expr: substituteVariables(q.expr, ALL) }));

  test("the scheduler counts live worker slots and, apart, live worker hosts", async () => {
    const text = await (await fetch(`${stack.scheduler.url}/metrics`)).text();
    const value = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1]);
    assert.equal(value("corral_workers_online"), stack.worker.slots.length);
    // CorralWorkerHeartbeatLost watches hosts, so slots that merge into a GPU group do not fire it.
    assert.equal(value("corral_worker_hosts_online"), 1);
  });

  test("the dashboard has queries in every row", () => {
    const rows = new Set(dashboardQueries(dashboard).map((q) => q.row));
    for (const row of ["Cluster", "GPUs", "Workers", "Tenants", "Batches", "Fairness"])
      assert.ok(rows.has(row), `row ${row}`);
  });

  test("every dashboard query parses and returns at least one series", async (t) => {
    const all = substituted(dashboardQueries(dashboard));
    const live = batchMetricsExported ? all : all.filter((q) => q.row !== "Batches");
    if (!batchMetricsExported) {
      const parked = all.filter((q) => q.row === "Batches");
      t.diagnostic(
        `Batches row: ${parked.length} queries only checked for parsing until the scheduler exports ${batchFamilies.join(", ")}`,
      );
      const problems = await checkQueries(prometheus, parked, { requireSeries: false });
      assert.equal(problems.length, 0, `Batches queries do not parse:\n${formatProblems(problems)}`);
    }
    const problems = await checkQueries(prometheus, live, {
      requireSeries: true,
      emptyAllowed,
      onAllowedEmpty: (query, reason) => t.diagnostic(`empty but allowed: ${query.where} (${reason})`),
    });
    assert.equal(
      problems.length,
      0,
      `${problems.length} of ${live.length} dashboard queries failed:\n${formatProblems(problems)}\n${prometheus.log()}`,
    );
  });

  test("every dashboard variable has values", async () => {
    const queries = substituted(variableQueries(dashboard));
    assert.ok(queries.length >= 3);
    const problems = await checkQueries(prometheus, queries, { requireSeries: true });
    assert.equal(problems.length, 0, formatProblems(problems));
  });

  test("queries filtered to a concrete model return that model's series", async () => {
    const perModel = substituted(
      dashboardQueries(dashboard).filter((q) => q.row === "Cluster" && /model=~"\$model"/.test(q.expr)),
    ).map((q) => ({ ...q, expr: q.expr.replaceAll('model=~".*"', `model=~"${MODEL}"`) }));
    assert.ok(perModel.length >= 5);
    // Failures are on the short-context model, so that one panel has nothing for MODEL.
    const expectSeries = perModel.filter((q) => !/status="failed"/.test(q.expr));
    const problems = await checkQueries(prometheus, expectSeries, { requireSeries: true, emptyAllowed });
    assert.equal(problems.length, 0, formatProblems(problems));
  });

  test("the GPU panels show what nvidia-smi reported (the fake's spec, through the worker and Prometheus)", async () => {
    const value = async (expr: string) => {
      const result = await prometheus.query(expr);
      assert.equal(result.status, "success", result.error);
      assert.equal(result.data!.result.length, 1, `${expr}: ${JSON.stringify(result.data!.result)}`);
      return Number(result.data!.result[0]!.value![1]);
    };
    assert.equal(await value("corral_gpu_utilization_ratio"), 0.37);
    assert.equal(await value("corral_gpu_memory_total_bytes"), 81559 * 1024 * 1024);
    assert.equal(await value("corral_gpu_memory_used_bytes"), 2048 * 1024 * 1024);
    assert.equal(await value("corral_gpu_temperature_celsius"), 52);
    assert.equal(await value("corral_gpu_power_watts"), 250.5);
  });

  test("every alert expression parses", async () => {
    const alerts = alertQueries(alertsPath);
    assert.ok(alerts.length >= 5);
    const problems = await checkQueries(prometheus, alerts, { requireSeries: false });
    assert.equal(problems.length, 0, formatProblems(problems));
  });

  test("the checker reports a query on a metric that does not exist, and one that does not parse", async () => {
    const bogus: NamedQuery[] = [
      {
        where: "bogus metric",
        row: "test",
        expr: 'sum by (model) (rate(corral_no_such_metric_total{model=~".*"}[1m]))',
      },
      { where: "bad syntax", row: "test", expr: "sum by (model (corral_queue_jobs)" },
    ];
    const problems = await checkQueries(prometheus, bogus, { requireSeries: true, emptyAllowed });
    assert.deepEqual(
      problems.map((p) => p.where),
      ["bogus metric", "bad syntax"],
    );
    assert.match(problems[0]!.problem, /no series/);
    assert.match(problems[1]!.problem, /bad_data|parse/);
    // The same pipeline as the dashboard test, on the dashboard with one metric misspelt.
    const broken = JSON.parse(
      JSON.stringify(dashboard).replace("corral_tokens_generated_total", "corral_tokens_generatd_total"),
    ) as typeof dashboard;
    const brokenProblems = await checkQueries(
      prometheus,
      substituted(dashboardQueries(broken)).filter((q) => q.row !== "Batches"),
      { requireSeries: true, emptyAllowed },
    );
    assert.equal(brokenProblems.length, 1, formatProblems(brokenProblems));
    assert.match(brokenProblems[0]!.expr, /corral_tokens_generatd_total/);
    // …while a real metric passes the same check.
    const real = await checkQueries(prometheus, [{ where: "real", row: "test", expr: "corral_workers_online" }], {
      requireSeries: true,
    });
    assert.deepEqual(real, []);
  });
});
