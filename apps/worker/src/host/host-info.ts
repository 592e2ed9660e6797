import os from "node:os";
import type { HostInfo } from "@corral/shared";
import * as si from "systeminformation";

/**
 * CPU, memory and OS facts for the worker's heartbeat, from `systeminformation` (never
 * used for GPUs: those come from nvidia-smi). `cpu_cores` counts logical cores;
 * `memory_free_bytes` is available memory (free plus reclaimable cache), which is what
 * a model load can use. Falls back to node:os where systeminformation answers blank.
 */
export async function hostInfo(): Promise<HostInfo> {
  const [cpu, memory, system] = await Promise.all([si.cpu(), si.mem(), si.osInfo()]);
  const cpuModel = [cpu.manufacturer, cpu.brand].filter((part) => part && part.trim() !== "").join(" ");
  const osName = [system.distro, system.release].filter((part) => part && part.trim() !== "").join(" ");
  const osDetail = [system.platform, system.kernel, system.arch].filter((part) => part && part.trim() !== "").join(" ");
  return {
    hostname: system.hostname || os.hostname(),
    cpu_model: cpuModel || os.cpus()[0]?.model || "unknown",
    cpu_cores: cpu.cores > 0 ? cpu.cores : os.availableParallelism(),
    memory_total_bytes: memory.total > 0 ? memory.total : os.totalmem(),
    memory_free_bytes: memory.available > 0 ? memory.available : os.freemem(),
    os: osName && osDetail ? `${osName} (${osDetail})` : osName || osDetail || `${os.type()} ${os.release()}`,
  };
}
