/**
 * A small parser for the Prometheus text exposition format (version 0.0.4), enough to
 * compare metric families: name, type, and the label names their samples carry.
 * (parse-prometheus-text-format on npm does the same but is untyped and unmaintained;
 * this avoids adding a root dependency for 60 lines.)
 */
export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface MetricFamily {
  name: string;
  type: MetricType;
  help: string;
  /** Label names over all samples, without `le` (histograms) and `quantile` (summaries). */
  labels: Set<string>;
  samples: Sample[];
}

export interface Sample {
  /** The sample's own name (`x_bucket`, `x_sum`, …). */
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SUFFIXES: Record<MetricType, readonly string[]> = {
  counter: [""],
  gauge: [""],
  untyped: [""],
  histogram: ["_bucket", "_sum", "_count"],
  summary: ["", "_sum", "_count"],
};

export function parseExposition(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  const family = (name: string): MetricFamily => {
    let found = families.get(name);
    if (!found) {
      found = { name, type: "untyped", help: "", labels: new Set(), samples: [] };
      families.set(name, found);
    }
    return found;
  };
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    const meta = /^#\s+(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      if (kind === "TYPE") family(name).type = rest as MetricType;
      else family(name).help = rest;
      continue;
    }
    if (line.startsWith("#")) continue;
    const sample = parseSample(line);
    const owner = ownerOf(sample.name, families) ?? family(sample.name);
    owner.samples.push(sample);
    for (const label of Object.keys(sample.labels)) {
      if ((owner.type === "histogram" && label === "le") || (owner.type === "summary" && label === "quantile"))
        continue;
      owner.labels.add(label);
    }
  }
  return families;
}

/** The declared family a sample name belongs to (`x_bucket` → histogram `x`). */
function ownerOf(sampleName: string, families: Map<string, MetricFamily>): MetricFamily | undefined {
  for (const fam of families.values()) {
    if (SUFFIXES[fam.type].some((suffix) => fam.name + suffix === sampleName)) return fam;
  }
  return undefined;
}

function parseSample(line: string): Sample {
  const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$/.exec(line);
  if (!match) throw new Error(`not a sample line: ${line}`);
  const labels: Record<string, string> = {};
  const body = match[3] ?? "";
  const pair = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/gy;
  let consumed = 0;
  for (let m = pair.exec(body); m; m = pair.exec(body)) {
    labels[m[1]!] = m[2]!.replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
    consumed = pair.lastIndex;
  }
  if (body.slice(consumed).trim() !== "") throw new Error(`bad labels in sample line: ${line}`);
  return { name: match[1]!, labels, value: Number(match[4]) };
}
