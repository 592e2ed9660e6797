import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import type { RunningPrometheus } from "./prometheus.js";

/** One PromQL expression from the dashboard or the alert rules, with where it came from. */
export interface NamedQuery {
  /** e.g. `Cluster / Jobs waiting / A` or `alert CorralGpuMemoryHigh`. */
  where: string;
  /** The dashboard row the panel sits in (alerts: "alerts"). */
  row: string;
  expr: string;
}

interface Panel {
  type?: string;
  title?: string;
  panels?: Panel[];
  targets?: Array<{ expr?: string; refId?: string }>;
}

interface Dashboard {
  panels?: Panel[];
  templating?: { list?: Array<{ name: string; type: string; query?: unknown; definition?: string }> };
}

export function readDashboard(path: string): Dashboard {
  return JSON.parse(readFileSync(path, "utf8")) as Dashboard;
}

/** Every panel target's `expr`, nested rows included, labelled with row and panel. */
export function dashboardQueries(dashboard: Dashboard): NamedQuery[] {
  const out: NamedQuery[] = [];
  let row = "(top)";
  const walk = (panels: Panel[] | undefined, inRow?: string) => {
    for (const panel of panels ?? []) {
      if (panel.type === "row") {
        row = panel.title ?? "(untitled row)";
        walk(panel.panels, row); // collapsed rows keep their panels inside
        continue;
      }
      for (const target of panel.targets ?? []) {
        if (!target.expr) continue;
        const at = inRow ?? row;
        out.push({
          where: `${at} / ${panel.title ?? "(untitled)"} / ${target.refId ?? "?"}`,
          row: at,
          expr: target.expr,
        });
      }
    }
  };
  walk(dashboard.panels);
  return out;
}

/**
 * The dashboard's query variables (`label_values(metric, label)`) as PromQL that returns
 * one series per value: `count by (label) (metric)`.
 */
export function variableQueries(dashboard: Dashboard): NamedQuery[] {
  const out: NamedQuery[] = [];
  for (const variable of dashboard.templating?.list ?? []) {
    if (variable.type !== "query") continue;
    const query =
      typeof variable.query === "string"
        ? variable.query
        : ((variable.query as { query?: string } | undefined)?.query ?? variable.definition ?? "");
    const match = /^label_values\(\s*(.+?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$/.exec(query.trim());
    if (!match) throw new Error(`variable ${variable.name}: unsupported query ${query}`);
    out.push({ where: `variable $${variable.name}`, row: "variables", expr: `count by (${match[2]}) (${match[1]})` });
  }
  return out;
}

/** Every alert rule's `expr` from a rule file. */
export function alertQueries(path: string): NamedQuery[] {
  const file = parseYaml(readFileSync(path, "utf8")) as {
    groups: Array<{ rules: Array<{ alert?: string; record?: string; expr: string }> }>;
  };
  return file.groups.flatMap((group) =>
    group.rules.map((rule) => ({
      where: rule.alert ? `alert ${rule.alert}` : `record ${rule.record}`,
      row: "alerts",
      expr: rule.expr,
    })),
  );
}

/**
 * Grafana's variables replaced the way Grafana would, so Prometheus can run the query:
 * template variables by `values` (a regex such as `.*` for "All"), the built-in
 * intervals by fixed windows. Throws when a `$` is left over (an unknown variable).
 */
export function substituteVariables(expr: string, values: Record<string, string>): string {
  const builtins: Record<string, string> = {
    __rate_interval: "1m",
    __interval: "15s",
    __range: "5m",
    __range_s: "300",
  };
  const all = { ...builtins, ...values };
  const replaced = expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g, (whole, a, b, c) => {
    const name = (a ?? b ?? c) as string;
    const value = all[name];
    if (value === undefined) throw new Error(`unknown variable ${whole} in ${expr}`);
    return value;
  });
  return replaced;
}

export interface QueryProblem {
  where: string;
  expr: string;
  problem: string;
}

/**
 * Runs each query through Prometheus's HTTP API. A query that does not parse or fails is
 * a problem; with `requireSeries`, so is one that returns no series.
 */
export async function checkQueries(
  prometheus: RunningPrometheus,
  queries: readonly NamedQuery[],
  options: {
    requireSeries: boolean;
    /** Why an empty result is acceptable for this query, or null when it is not. */
    emptyAllowed?: (query: NamedQuery) => string | null;
    /** Told about each query accepted through `emptyAllowed`. */
    onAllowedEmpty?: (query: NamedQuery, reason: string) => void;
  },
): Promise<QueryProblem[]> {
  const problems: QueryProblem[] = [];
  for (const query of queries) {
    const result = await prometheus.query(query.expr);
    if (result.status !== "success") {
      problems.push({ ...query, problem: `${result.errorType ?? "error"}: ${result.error ?? "no error text"}` });
      continue;
    }
    if (options.requireSeries && (result.data?.result.length ?? 0) === 0) {
      const reason = options.emptyAllowed?.(query) ?? null;
      if (reason !== null) options.onAllowedEmpty?.(query, reason);
      else problems.push({ ...query, problem: "returned no series (does every metric it names exist?)" });
    }
  }
  return problems;
}

/** The metric families a query names (`corral_x_bucket` → `corral_x`), `up` aside. */
export function metricNames(expr: string): string[] {
  const names = new Set<string>();
  for (const match of expr.matchAll(/\b(corral_[a-z0-9_]+)/g)) names.add(match[1]!.replace(/_(bucket|sum|count)$/, ""));
  return [...names];
}

export const formatProblems = (problems: readonly QueryProblem[]): string =>
  problems.map((p) => `- ${p.where}: ${p.problem}\n    ${p.expr.replace(/\s+/g, " ")}`).join("\n");
