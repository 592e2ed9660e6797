import type { GpuInfo } from "@corral/shared";

/**
 * Readers for single nvidia-smi values. CSV wraps placeholders in brackets (`[N/A]`,
 * `[Not Supported]`, `[Requested functionality has been deprecated]`); XML and the
 * default table print them bare (`N/A`). Any of them, or an empty value, reads as null.
 */
const BARE_PLACEHOLDERS = new Set([
  "n/a",
  "na",
  "not supported",
  "requested functionality has been deprecated",
  "unknown error",
  "insufficient permissions",
  "gpu requires reset",
  "gpu is lost",
  "none",
  "err!",
]);

export function isPlaceholder(raw: string | null | undefined): boolean {
  if (raw === null || raw === undefined) return true;
  const value = raw.trim();
  if (value === "") return true;
  if (value.startsWith("[") && value.endsWith("]")) return true;
  return BARE_PLACEHOLDERS.has(value.toLowerCase());
}

/** The value as text, or null for a placeholder. */
export function readText(raw: string | null | undefined): string | null {
  return isPlaceholder(raw) ? null : raw!.trim();
}

const NUMBER_WITH_UNIT = /^([-+]?\d+(?:\.\d+)?)\s*([A-Za-z%/]+)?$/;

/** Splits `81559 MiB` into 81559 and `MiB`; null for placeholders; undefined when it is not a number at all. */
export function readNumberWithUnit(
  raw: string | null | undefined,
): { value: number; unit: string | null } | null | undefined {
  if (isPlaceholder(raw)) return null;
  const match = NUMBER_WITH_UNIT.exec(raw!.trim());
  if (!match) return undefined;
  return { value: Number(match[1]), unit: match[2] ?? null };
}

/** A plain number with any unit suffix stripped (`69.85 W`, `7 %`, `1410 MHz`, `41`, `13 C`); null for placeholders or text. */
export function readNumber(raw: string | null | undefined): number | null {
  return readNumberWithUnit(raw)?.value ?? null;
}

const BYTES_PER_UNIT: Record<string, number> = {
  b: 1,
  kib: 1024,
  kb: 1024,
  mib: 1024 ** 2,
  mb: 1024 ** 2,
  gib: 1024 ** 3,
  gb: 1024 ** 3,
};

/**
 * A memory size in bytes. nvidia-smi reports memory in MiB (it writes `MiB` in CSV and
 * XML and `MB` in some older outputs, both meaning 2^20). `defaultUnit` applies when the
 * value carries none (`--format=csv,nounits`); it comes from the header (`[MiB]`).
 * Null for a placeholder; undefined when the value is not a size.
 */
export function readBytes(
  raw: string | null | undefined,
  defaultUnit: string | null = "MiB",
): number | null | undefined {
  const parsed = readNumberWithUnit(raw);
  if (parsed === null || parsed === undefined) return parsed;
  const unit = (parsed.unit ?? defaultUnit ?? "MiB").toLowerCase();
  const factor = BYTES_PER_UNIT[unit];
  if (factor === undefined) return undefined;
  return Math.round(parsed.value * factor);
}

/** `0 %` → 0, `7 %` → 0.07, `[N/A]` → null. */
export function readRatio(raw: string | null | undefined): number | null {
  const value = readNumber(raw);
  return value === null ? null : value / 100;
}

/** `Enabled` / `Disabled`; anything else (placeholders, a GPU without MIG) is `unsupported`. */
export function readMigMode(raw: string | null | undefined): GpuInfo["mig_mode"] {
  const value = readText(raw)?.toLowerCase();
  if (value === "enabled") return "enabled";
  if (value === "disabled") return "disabled";
  return "unsupported";
}

export const MIB = 1024 ** 2;
export const GIB = 1024 ** 3;
