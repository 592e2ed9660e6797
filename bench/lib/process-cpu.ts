import { readFileSync } from "node:fs";

/** CPU time (user + system) a process has used, in µs, from /proc; null where there is no /proc. */
export function processCpuMicros(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    // Fields after "(comm) ": state is the 1st, utime the 12th, stime the 13th (clock ticks, 100/s).
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return null;
  }
}

/** CPU time of a process and all its descendants (a worker supervisor and its slots), in µs. */
export function processTreeCpuMicros(pid: number | undefined): number | null {
  const own = processCpuMicros(pid);
  if (own === null) return null;
  let children: string[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
  } catch {
    // no /proc children file: count the process alone
  }
  return children.reduce((sum, child) => sum + (processTreeCpuMicros(Number(child)) ?? 0), own);
}

/** CPU µs per job (or per request) that each named process (tree) used between two {@link cpuSnapshot}s. */
export type CpuPerJob = Record<string, number>;

/** The sum over every process of a {@link CpuPerJob}. */
export const cpuTotal = (cpu: CpuPerJob): number => Object.values(cpu).reduce((sum, v) => sum + v, 0);

/** A process to account for: with `tree`, its descendants too (a worker supervisor's slots). */
export interface CpuSubject {
  pid: number | undefined;
  tree?: boolean;
}

/** CPU time of each named process (or tree) now; pair with {@link cpuPerJob}. */
export function cpuSnapshot(subjects: Record<string, CpuSubject>): Record<string, number | null> {
  return Object.fromEntries(
    Object.entries(subjects).map(([name, { pid, tree }]) => [
      name,
      tree ? processTreeCpuMicros(pid) : processCpuMicros(pid),
    ]),
  );
}

export function cpuPerJob(
  before: Record<string, number | null>,
  after: Record<string, number | null>,
  jobs: number,
): CpuPerJob {
  const out: CpuPerJob = {};
  for (const [name, start] of Object.entries(before)) {
    const end = after[name];
    if (start !== null && end !== null && end !== undefined && jobs > 0) out[name] = Math.round((end - start) / jobs);
  }
  return out;
}

/** Busy and total jiffies of the whole machine, from /proc/stat's first line; null without /proc. */
export function machineJiffies(): { busy: number; total: number; cores: number } | null {
  try {
    const lines = readFileSync("/proc/stat", "utf8").split("\n");
    const fields = lines[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((sum, v) => sum + v, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return { busy: total - idle, total, cores: lines.filter((line) => /^cpu\d+ /.test(line)).length };
  } catch {
    return null;
  }
}

/** Cores the machine kept busy between two {@link machineJiffies} readings. */
export function busyCores(
  before: ReturnType<typeof machineJiffies>,
  after: ReturnType<typeof machineJiffies>,
): number | null {
  if (!before || !after || after.total === before.total) return null;
  return ((after.busy - before.busy) / (after.total - before.total)) * after.cores;
}
