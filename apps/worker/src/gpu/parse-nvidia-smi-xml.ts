import type { GpuInfo, MigInstance } from "@corral/shared";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { NvidiaSmiParseError } from "./errors.js";
import { migProfileMemoryBytes } from "./parse-list-gpus.js";
import { readBytes, readMigMode, readNumber, readRatio, readText } from "./utils/values.js";

/** What `nvidia-smi -q -x` tells about the machine. */
export interface NvidiaSmiXmlReport {
  driverVersion: string | null;
  cudaVersion: string | null;
  gpus: GpuInfo[];
}

type XmlNode = Record<string, unknown>;

const ARRAY_PATHS = new Set([
  "nvidia_smi_log.gpu",
  "nvidia_smi_log.gpu.mig_devices.mig_device",
  "nvidia_smi_log.gpu.processes.process_info",
]);

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@_",
  parseTagValue: false, // keep "0000", "9.0", "590.44.01" as written
  parseAttributeValue: false,
  trimValues: true,
  jPath: true,
  isArray: (_tagName, jPath) => typeof jPath === "string" && ARRAY_PATHS.has(jPath),
});

function isNode(value: unknown): value is XmlNode {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The text at `path` below `node`, or undefined when any step is missing. */
function text(node: unknown, ...path: string[]): string | undefined {
  let current: unknown = node;
  for (const step of path) {
    if (!isNode(current)) return undefined;
    current = current[step];
  }
  if (typeof current === "string") return current;
  if (typeof current === "number") return String(current);
  if (isNode(current) && typeof current["#text"] === "string") return current["#text"];
  return undefined;
}

function nodes(node: unknown, ...path: string[]): XmlNode[] {
  let current: unknown = node;
  for (const step of path) {
    if (!isNode(current)) return [];
    current = current[step];
  }
  return Array.isArray(current) ? current.filter(isNode) : isNode(current) ? [current] : [];
}

function bytes(node: unknown, field: string, ...path: string[]): number | null {
  const raw = text(node, ...path);
  const value = readBytes(raw, "MiB");
  if (value === undefined) {
    throw new NvidiaSmiParseError("xml", `${field} is ${JSON.stringify(raw)}, not a size`);
  }
  return value;
}

/** Power moved from `<power_readings><power_draw>` (DTD ≤ v11) to `<gpu_power_readings>` with average and instant draws. */
function powerWatts(gpu: XmlNode): number | null {
  const candidates = [
    text(gpu, "gpu_power_readings", "power_draw"),
    text(gpu, "gpu_power_readings", "average_power_draw"),
    text(gpu, "gpu_power_readings", "instant_power_draw"),
    text(gpu, "power_readings", "power_draw"),
    text(gpu, "power_readings", "average_power_draw"),
    text(gpu, "power_readings", "instant_power_draw"),
  ];
  for (const candidate of candidates) {
    const value = readNumber(candidate);
    if (value !== null) return value;
  }
  return null;
}

/**
 * MIG devices as `-q -x` lists them. The XML names no profile and no MIG UUID; those
 * come from `nvidia-smi -L`, so they are read here only if a future DTD adds them.
 */
function migInstances(gpu: XmlNode): MigInstance[] {
  return nodes(gpu, "mig_devices", "mig_device").map((device, position) => {
    const profile = readText(text(device, "profile")) ?? readText(text(device, "profile_name")) ?? "";
    const indexText = readNumber(text(device, "index"));
    return {
      uuid: readText(text(device, "uuid")) ?? "",
      profile,
      device_index: indexText ?? position,
      memory_total_bytes:
        bytes(device, "mig_device.fb_memory_usage.total", "fb_memory_usage", "total") ?? migProfileMemoryBytes(profile),
    };
  });
}

/**
 * Parses `nvidia-smi -q -x`. The XML has no GPU index; GPUs appear in the order
 * nvidia-smi numbers them (PCI bus order), so the index is the position. `<minor_number>`
 * is the /dev/nvidiaN number and is not the index. The XML carries no compute capability.
 * Throws `NvidiaSmiParseError` on text that is not an `<nvidia_smi_log>` document.
 */
export function parseNvidiaSmiXml(xmlText: string): NvidiaSmiXmlReport {
  const valid = XMLValidator.validate(xmlText);
  if (valid !== true) {
    throw new NvidiaSmiParseError("xml", valid.err.msg, valid.err.line);
  }
  const document: unknown = parser.parse(xmlText);
  const log = isNode(document) ? document["nvidia_smi_log"] : undefined;
  if (!isNode(log)) {
    throw new NvidiaSmiParseError("xml", "no <nvidia_smi_log> root element");
  }
  const driverVersion = readText(text(log, "driver_version"));
  const gpus = nodes(log, "gpu").map((gpu, position): GpuInfo => ({
    index: position,
    uuid: readText(text(gpu, "uuid")) ?? "",
    name: readText(text(gpu, "product_name")) ?? "",
    memory_total_bytes: bytes(gpu, "fb_memory_usage.total", "fb_memory_usage", "total"),
    memory_used_bytes: bytes(gpu, "fb_memory_usage.used", "fb_memory_usage", "used"),
    memory_free_bytes: bytes(gpu, "fb_memory_usage.free", "fb_memory_usage", "free"),
    utilization_ratio: readRatio(text(gpu, "utilization", "gpu_util")),
    temperature_celsius: readNumber(text(gpu, "temperature", "gpu_temp")),
    power_watts: powerWatts(gpu),
    driver_version: driverVersion,
    compute_capability: null,
    mig_mode: readMigMode(text(gpu, "mig_mode", "current_mig")),
    mig_instances: migInstances(gpu),
  }));
  return { driverVersion, cudaVersion: readText(text(log, "cuda_version")), gpus };
}
