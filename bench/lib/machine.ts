import { readFileSync } from "node:fs";
import os from "node:os";
import type { MachineInfo } from "./types.js";

/** The version of a package installed at the repository root. */
function packageVersion(name: string): string {
  try {
    const url = new URL(`../../node_modules/${name}/package.json`, import.meta.url);
    return (JSON.parse(readFileSync(url, "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

export function machineInfo(redisVersion: string): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: os.availableParallelism(),
    memory_bytes: os.totalmem(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    date: new Date().toISOString(),
    load_average: os.loadavg().map((load) => Math.round(load * 100) / 100),
    redis: redisVersion,
    node_llama_cpp: packageVersion("node-llama-cpp"),
    bullmq: packageVersion("bullmq"),
  };
}
