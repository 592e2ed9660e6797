export { execFileRunner, type CommandResult, type CommandRunOptions, type CommandRunner } from "./command-runner.js";
export {
  applyGpuSamples,
  discoverGpus,
  discoverTopology,
  queryGpuArgs,
  sampleGpus,
  sampleMigDevices,
  type GpuDiscovery,
  type NvidiaSmiOptions,
} from "./discover-gpus.js";
export { CommandTimeoutError, NvidiaSmiError, NvidiaSmiParseError, type NvidiaSmiFailure } from "./errors.js";
export { formatGpuTable } from "./format-gpu-table.js";
export { parseCudaVersion, parseMigDevicesTable, type MigDeviceUsage } from "./parse-default-table.js";
export {
  migProfileMemoryBytes,
  parseListGpus,
  parseMigProfile,
  type ListedGpu,
  type MigProfile,
} from "./parse-list-gpus.js";
export {
  DISCOVERY_QUERY_FIELDS,
  SAMPLE_QUERY_FIELDS,
  parseQueryGpuCsv,
  readQueryGpuCsv,
  type GpuSample,
  type QueryGpuCell,
  type QueryGpuRecord,
} from "./parse-query-gpu-csv.js";
export { applyMigSamples, isMigDevice, migDeviceAsGpu } from "./mig-device-gpu.js";
export { linkRank, parseTopology, type GpuLink, type GpuTopology } from "./parse-topology.js";
