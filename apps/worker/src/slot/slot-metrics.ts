import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { METRIC, type GpuInfo } from "@corral/shared";
import type { ClaimMetrics } from "../claim/types.js";
import { isMigDevice } from "../gpu/index.js";

/**
 * The `gpu` label: the nvidia-smi index, or `<index>-mig<device>` for a MIG device, so the
 * slots of one MIG GPU (two `1g.10gb` devices have the same name) stay separate series
 * when the supervisor sums the slots' registries.
 */
const gpuLabel = (gpu: GpuInfo): string => {
  const instance = gpu.mig_instances[0];
  return isMigDevice(gpu) && instance !== undefined ? `${gpu.index}-mig${instance.device_index}` : String(gpu.index);
};
/** A value of the whole physical GPU (temperature, power): not repeated for each of its MIG devices' slots. */
const wholeGpu =
  (read: (gpu: GpuInfo) => number | null) =>
  (gpu: GpuInfo): number | null =>
    isMigDevice(gpu) ? null : read(gpu);

export interface SlotMetricsOptions {
  /** The slot name used as the `slot` label, e.g. `box-1:gpu0`. */
  slot: string;
  /** Host name for the GPU gauges' `host` label. */
  host: string;
  /** The latest GPU facts of this slot's devices, read at scrape time. Empty for CPU slots. */
  gpus: () => readonly GpuInfo[];
  /**
   * The slot's devices for `corral_slot_devices_info`: what it has in `CUDA_VISIBLE_DEVICES`
   * and its GPUs' nvidia-smi indexes. @defaultValue none (the gauge stays empty)
   */
  devices?: { devices: readonly string[]; gpus: readonly number[] };
  /** @defaultValue a new Registry */
  registry?: Registry;
}

const TTFT_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const DURATION_BUCKETS = [0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
const WAIT_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
const LOAD_BUCKETS = [0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Audio seconds per wall second: below 1 is slower than real time. */
const REAL_TIME_FACTOR_BUCKETS = [0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128];

export type JobPhase = "queue" | "load" | "generate" | "total";

/**
 * One slot's metrics, in its own Registry (the supervisor aggregates the slots'). Label
 * sets are fixed and small: model, status, phase, slot, the GPU's host/index/name, and
 * tenant (the configured API keys' tenants).
 * Never a job id or a prompt.
 */
export class SlotMetrics implements ClaimMetrics {
  readonly registry: Registry;
  readonly slot: string;
  readonly jobsCompleted: Counter<"model" | "status">;
  readonly tokensGenerated: Counter<"model">;
  readonly promptTokens: Counter<"model">;
  readonly promptTokensReused: Counter<"model">;
  readonly timeToFirstToken: Histogram<"model">;
  readonly jobDuration: Histogram<"model" | "phase">;
  readonly modelLoad: Histogram<"model">;
  readonly modelLoaded: Gauge<"model" | "slot">;
  readonly busySequences: Gauge<"slot">;
  readonly oomReleases: Counter<"model">;
  readonly jobsParked: Counter<"model">;
  readonly tenantServiceTokens: Counter<"tenant">;
  readonly tenantWait: Histogram<"tenant">;
  readonly audioSeconds: Counter<"model">;
  readonly realTimeFactor: Histogram<"model">;

  constructor(options: SlotMetricsOptions) {
    const registry = options.registry ?? new Registry();
    this.registry = registry;
    this.slot = options.slot;
    const registers = [registry];

    const gpuGauge = (name: string, help: string, read: (gpu: GpuInfo) => number | null) =>
      new Gauge({
        name,
        help,
        labelNames: ["host", "gpu", "name"] as const,
        registers,
        collect() {
          this.reset();
          for (const gpu of options.gpus()) {
            const value = read(gpu);
            if (value !== null) this.set({ host: options.host, gpu: gpuLabel(gpu), name: gpu.name }, value);
          }
        },
      });
    gpuGauge(METRIC.gpuUtilization, "GPU utilization, 0 to 1, from nvidia-smi.", (gpu) => gpu.utilization_ratio);
    gpuGauge(METRIC.gpuMemoryUsed, "GPU memory in use (all processes), bytes.", (gpu) => gpu.memory_used_bytes);
    gpuGauge(METRIC.gpuMemoryTotal, "GPU memory in total, bytes.", (gpu) => gpu.memory_total_bytes);
    gpuGauge(
      METRIC.gpuTemperature,
      "GPU temperature, degrees Celsius.",
      wholeGpu((gpu) => gpu.temperature_celsius),
    );
    gpuGauge(
      METRIC.gpuPower,
      "GPU power draw, watts.",
      wholeGpu((gpu) => gpu.power_watts),
    );

    this.jobsCompleted = new Counter({
      name: METRIC.jobsCompleted,
      help: "Jobs this worker finished, by final status (succeeded, failed, cancelled) or retry.",
      labelNames: ["model", "status"] as const,
      registers,
    });
    this.tokensGenerated = new Counter({
      name: METRIC.tokensGenerated,
      help: "Completion tokens generated.",
      labelNames: ["model"] as const,
      registers,
    });
    this.promptTokens = new Counter({
      name: METRIC.promptTokens,
      help: "Prompt tokens evaluated.",
      labelNames: ["model"] as const,
      registers,
    });
    this.promptTokensReused = new Counter({
      name: METRIC.promptTokensReused,
      help: "Prompt tokens a job found in its sequence, left by an earlier job, and did not evaluate again (prefix reuse; part of corral_prompt_tokens_total).",
      labelNames: ["model"] as const,
      registers,
    });
    this.timeToFirstToken = new Histogram({
      name: METRIC.timeToFirstToken,
      help: "From the start of generation to the first token (prompt evaluation included), seconds.",
      labelNames: ["model"] as const,
      buckets: TTFT_BUCKETS,
      registers,
    });
    this.jobDuration = new Histogram({
      name: METRIC.jobDuration,
      help: "Time a job spent in each phase: queue (created to started), load, generate, total, seconds.",
      labelNames: ["model", "phase"] as const,
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.modelLoad = new Histogram({
      name: METRIC.modelLoad,
      help: "Time to load a model and create its context, seconds.",
      labelNames: ["model"] as const,
      buckets: LOAD_BUCKETS,
      registers,
    });
    this.modelLoaded = new Gauge({
      name: METRIC.modelLoaded,
      help: "1 while the model is loaded on the slot.",
      labelNames: ["model", "slot"] as const,
      registers,
    });
    this.busySequences = new Gauge({
      name: METRIC.slotBusySequences,
      help: "Sequences generating right now on the slot.",
      labelNames: ["slot"] as const,
      registers,
    });
    this.busySequences.set({ slot: options.slot }, 0);
    const devices = new Gauge({
      name: METRIC.slotDevices,
      help: "1 for each slot, with its devices: `devices` as in CUDA_VISIBLE_DEVICES (indexes, or a MIG UUID), `gpus` its GPUs' nvidia-smi indexes (several for a group slot).",
      labelNames: ["slot", "host", "devices", "gpus"] as const,
      registers,
    });
    if (options.devices !== undefined)
      devices.set(
        {
          slot: options.slot,
          host: options.host,
          devices: options.devices.devices.join(","),
          gpus: options.devices.gpus.join(","),
        },
        1,
      );
    this.oomReleases = new Counter({
      name: METRIC.oomReleases,
      help: "Jobs put back in their lane because loading their model ran out of memory.",
      labelNames: ["model"] as const,
      registers,
    });
    this.jobsParked = new Counter({
      name: METRIC.jobsParked,
      help: "Jobs claimed while their tenant ran its CORRAL_TENANT_MAX_ACTIVE jobs, and parked (delayed) until a place frees.",
      labelNames: ["model"] as const,
      registers,
    });
    // Tenants are the configured API keys' (or `default`): a short, fixed list.
    this.tenantServiceTokens = new Counter({
      name: METRIC.tenantServiceTokens,
      help: "Tokens (prompt + completion) each tenant's jobs used, counted when a job ends (succeeded or cancelled): the service fair claim shares out.",
      labelNames: ["tenant"] as const,
      registers,
    });
    this.tenantWait = new Histogram({
      name: METRIC.tenantWait,
      help: "From a job's creation to a slot starting it, by tenant, seconds (a retried or released job counts again, from its creation).",
      labelNames: ["tenant"] as const,
      buckets: WAIT_BUCKETS,
      registers,
    });
    this.audioSeconds = new Counter({
      name: METRIC.audioSeconds,
      help: "Seconds of audio transcribed or translated by jobs that succeeded.",
      labelNames: ["model"] as const,
      registers,
    });
    this.realTimeFactor = new Histogram({
      name: METRIC.audioRealTimeFactor,
      help: "Audio seconds per wall second of each transcription or translation run (decoding and whisper.cpp); above 1 is faster than real time.",
      labelNames: ["model"] as const,
      buckets: REAL_TIME_FACTOR_BUCKETS,
      registers,
    });
  }

  setLoaded(model: string, loaded: boolean): void {
    if (loaded) this.modelLoaded.set({ model, slot: this.slot }, 1);
    else this.modelLoaded.remove({ model, slot: this.slot });
  }

  setBusy(sequences: number): void {
    this.busySequences.set({ slot: this.slot }, sequences);
  }
}
