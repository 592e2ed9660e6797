import type { GpuInfo } from "@corral/shared";
import { NvidiaSmiParseError } from "./errors.js";
import { readBytes, readMigMode, readNumber, readRatio, readText } from "./utils/values.js";

/** One value of a `--query-gpu` row, with the unit its header gave (`[MiB]`), if any. */
export interface QueryGpuCell {
  raw: string;
  unit: string | null;
}

/** One `--query-gpu` row, keyed by field name without the unit (`memory.total`). */
export type QueryGpuRecord = ReadonlyMap<string, QueryGpuCell>;

/** A GPU's live numbers: what `sampleGpus` refreshes every few seconds. */
export type GpuSample = Pick<
  GpuInfo,
  | "index"
  | "uuid"
  | "memory_total_bytes"
  | "memory_used_bytes"
  | "memory_free_bytes"
  | "utilization_ratio"
  | "temperature_celsius"
  | "power_watts"
>;

/** Fields that discovery asks for. Parsing never depends on this order. */
export const DISCOVERY_QUERY_FIELDS = [
  "index",
  "uuid",
  "name",
  "memory.total",
  "memory.used",
  "memory.free",
  "utilization.gpu",
  "temperature.gpu",
  "power.draw",
  "driver_version",
  "compute_cap",
  "mig.mode.current",
] as const;

/** Fields that the cheap refresh asks for. */
export const SAMPLE_QUERY_FIELDS = [
  "index",
  "uuid",
  "memory.total",
  "memory.used",
  "memory.free",
  "utilization.gpu",
  "temperature.gpu",
  "power.draw",
] as const;

/** Older spellings nvidia-smi still accepts; rows are keyed by the canonical name. */
const FIELD_ALIASES: Record<string, string> = {
  gpu_name: "name",
  gpu_uuid: "uuid",
  gpu_serial: "serial",
  gpu_bus_id: "pci.bus_id",
};

/** Fields a GPU row can be identified by; a header without any of them is not a `--query-gpu` header. */
const IDENTIFYING_FIELDS = ["index", "uuid", "name", "pci.bus_id", "serial"];

const FIELD_NAME = /^[A-Za-z][A-Za-z0-9_.]*$/;
const HEADER_CELL = /^(.*?)\s*(?:\[([^\]]*)\])?$/;

function splitLine(line: string): string[] {
  // nvidia-smi never quotes: it separates values with ", " and no value holds a comma.
  return line.split(",").map((cell) => cell.trim());
}

function parseHeader(line: string, lineNumber: number): Array<{ name: string; unit: string | null }> {
  return splitLine(line).map((cell) => {
    const match = HEADER_CELL.exec(cell);
    const name = match?.[1] ?? "";
    if (!FIELD_NAME.test(name)) {
      throw new NvidiaSmiParseError(
        "query-gpu",
        `header cell ${JSON.stringify(cell)} is not a field name; expected e.g. "memory.total [MiB]"`,
        lineNumber,
      );
    }
    const unit = match?.[2]?.trim();
    return { name: FIELD_ALIASES[name] ?? name, unit: unit ? unit : null };
  });
}

/**
 * Reads `--query-gpu=… --format=csv` output into one record per GPU, keyed by field name.
 * The header (with or without units) names the columns. For `noheader` output pass the
 * requested `fields` in order instead. Throws `NvidiaSmiParseError` when the text is not
 * such a table.
 */
export function readQueryGpuCsv(text: string, options: { fields?: readonly string[] } = {}): QueryGpuRecord[] {
  const lines = text
    .replace(/^\uFEFF/, "")
    .split(/\r?\n/)
    .map((line, i) => ({ line, number: i + 1 }))
    .filter(({ line }) => line.trim() !== "");
  let columns: Array<{ name: string; unit: string | null }>;
  let body = lines;
  if (options.fields) {
    columns = options.fields.map((field) => ({ name: FIELD_ALIASES[field] ?? field, unit: null }));
  } else {
    const header = lines[0];
    if (header === undefined) throw new NvidiaSmiParseError("query-gpu", "empty output, expected a header line");
    columns = parseHeader(header.line, header.number);
    body = lines.slice(1);
  }
  if (!columns.some((column) => IDENTIFYING_FIELDS.includes(column.name))) {
    throw new NvidiaSmiParseError(
      "query-gpu",
      `no identifying column (one of ${IDENTIFYING_FIELDS.join(", ")}) among ${columns.map((c) => c.name).join(", ")}`,
      options.fields ? null : 1,
    );
  }
  return body.map(({ line, number }) => {
    const cells = splitLine(line);
    if (cells.length !== columns.length) {
      throw new NvidiaSmiParseError(
        "query-gpu",
        `row has ${cells.length} values but the header has ${columns.length} columns`,
        number,
      );
    }
    const record = new Map<string, QueryGpuCell>();
    columns.forEach((column, i) => record.set(column.name, { raw: cells[i] ?? "", unit: column.unit }));
    return record;
  });
}

function bytesField(record: QueryGpuRecord, field: string, row: number): number | null {
  const cell = record.get(field);
  if (cell === undefined) return null;
  const value = readBytes(cell.raw, cell.unit ?? "MiB");
  if (value === undefined) {
    throw new NvidiaSmiParseError("query-gpu", `${field} of GPU row ${row} is ${JSON.stringify(cell.raw)}, not a size`);
  }
  return value;
}

function indexField(record: QueryGpuRecord, position: number): number {
  const cell = record.get("index");
  if (cell === undefined) return position;
  const value = readNumber(cell.raw);
  if (value === null || !Number.isInteger(value) || value < 0) {
    throw new NvidiaSmiParseError("query-gpu", `index of GPU row ${position} is ${JSON.stringify(cell.raw)}`);
  }
  return value;
}

/** First readable number among `fields` (power.draw is `[N/A]` on some boards where power.draw.average is not). */
function firstNumber(record: QueryGpuRecord, fields: readonly string[]): number | null {
  for (const field of fields) {
    const value = readNumber(record.get(field)?.raw);
    if (value !== null) return value;
  }
  return null;
}

/** Turns one record into a `GpuInfo` (no MIG instances yet). `position` is the row's 0-based place. */
export function gpuFromRecord(record: QueryGpuRecord, position: number): GpuInfo {
  return {
    index: indexField(record, position),
    uuid: readText(record.get("uuid")?.raw) ?? "",
    name: readText(record.get("name")?.raw) ?? "",
    memory_total_bytes: bytesField(record, "memory.total", position),
    memory_used_bytes: bytesField(record, "memory.used", position),
    // Taken as reported: total − used − free is the driver's reserved memory, not free.
    memory_free_bytes: bytesField(record, "memory.free", position),
    utilization_ratio: readRatio(record.get("utilization.gpu")?.raw),
    temperature_celsius: readNumber(record.get("temperature.gpu")?.raw),
    power_watts: firstNumber(record, ["power.draw", "power.draw.average", "power.draw.instant"]),
    driver_version: readText(record.get("driver_version")?.raw),
    compute_capability: readText(record.get("compute_cap")?.raw),
    mig_mode: readMigMode(record.get("mig.mode.current")?.raw),
    mig_instances: [],
  };
}

export function sampleFromGpu(gpu: GpuInfo): GpuSample {
  return {
    index: gpu.index,
    uuid: gpu.uuid,
    memory_total_bytes: gpu.memory_total_bytes,
    memory_used_bytes: gpu.memory_used_bytes,
    memory_free_bytes: gpu.memory_free_bytes,
    utilization_ratio: gpu.utilization_ratio,
    temperature_celsius: gpu.temperature_celsius,
    power_watts: gpu.power_watts,
  };
}

/**
 * Parses `nvidia-smi --query-gpu=… --format=csv` into one `GpuInfo` per row, by header
 * name, never by position: any field set, any order, with or without `nounits`. Fields
 * that were not asked for read as null (`uuid` and `name` as ""; `index` as the row's
 * place). Placeholders read as null. Throws `NvidiaSmiParseError` on text that is not
 * such a table or on a memory value that is not a size.
 */
export function parseQueryGpuCsv(text: string, options: { fields?: readonly string[] } = {}): GpuInfo[] {
  return readQueryGpuCsv(text, options).map((record, position) => gpuFromRecord(record, position));
}
