import type { BenchReport } from "./types.js";

const text = (value: unknown): string => {
  if (value === null || value === undefined) return "–";
  if (typeof value === "boolean") return value ? "met" : "MISSED";
  return String(value);
};

/** The headline table (a Markdown table, readable in a terminal and pasteable into docs/performance.md). */
export function formatTable(report: BenchReport, names: readonly string[]): string {
  const rows = [["benchmark", "corral", "baseline", "ratio", "unit", "target", "result"]];
  for (const name of names) {
    const entry = report[name] as Record<string, unknown> | undefined;
    if (!entry) continue;
    if (typeof entry.error === "string") {
      rows.push([name, "error", "", "", "", "", entry.error.slice(0, 60)]);
      continue;
    }
    rows.push([
      name,
      text(entry.corral),
      text(entry.baseline),
      text(entry.ratio),
      text(entry.unit),
      text(entry.target),
      entry.met === null ? "no target" : text(entry.met),
    ]);
  }
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  const line = (row: string[]) => `| ${row.map((cell, col) => cell.padEnd(widths[col]!)).join(" | ")} |`;
  return [line(rows[0]!), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.slice(1).map(line)].join("\n");
}
