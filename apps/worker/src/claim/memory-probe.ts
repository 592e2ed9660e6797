import os from "node:os";
import type { Logger } from "pino";
import { defaultReserveBytes, type GpuInfo } from "@corral/shared";
import {
  applyGpuSamples,
  applyMigSamples,
  isMigDevice,
  sampleGpus,
  sampleMigDevices,
  type NvidiaSmiOptions,
} from "../gpu/index.js";

/** Free and total memory of a slot's device, as last sampled. */
export interface MemoryReading {
  freeBytes: number;
  totalBytes: number;
  /** When it was read, ms since the epoch. */
  at: number;
}

/** Where a slot's live free memory comes from. */
export interface MemoryProbe {
  /** A reading no older than the probe's interval; concurrent callers share one sample. */
  read(): Promise<MemoryReading>;
  /** The bytes to keep free on this device. */
  reserveBytes(totalBytes: number): number;
  /** This slot's GPUs with their latest sampled values (empty for CPU slots). */
  gpus(): readonly GpuInfo[];
}

/** How long a sample is reused before nvidia-smi is asked again. */
export const DEFAULT_SAMPLE_INTERVAL_MS = 1500;
/** A GPU sample older than this counts as unknown: the slot then loads nothing new. */
const STALE_AFTER_MS = 15_000;

export interface GpuMemoryProbeOptions {
  /** This slot's GPUs (one today; a multi-device slot later), as discovered. */
  gpus: readonly GpuInfo[];
  nvidiaSmi: NvidiaSmiOptions;
  /** Configured reserve; null: node-llama-cpp's min(8%, 1.6 GiB) of the total. */
  reserveBytes: number | null;
  logger: Logger;
  /** @defaultValue 1500 */
  intervalMs?: number;
  /** @defaultValue Date.now */
  now?: () => number;
}

/**
 * Live free VRAM of this slot's GPUs from `nvidia-smi --query-gpu` (for a MIG device: the
 * "MIG devices" section of plain `nvidia-smi`), sampled at most every `intervalMs`. Never from bookkeeping alone: other processes use the GPU too.
 * When nvidia-smi fails, the last sample is kept for a while, then the slot reads as
 * having no free memory (it keeps running loaded models but loads nothing new).
 */
export class GpuMemoryProbe implements MemoryProbe {
  readonly #options: Required<Omit<GpuMemoryProbeOptions, "reserveBytes">> & { reserveBytes: number | null };
  #gpus: GpuInfo[];
  #reading: MemoryReading | null = null;
  #inflight: Promise<MemoryReading> | null = null;
  #failing = false;

  constructor(options: GpuMemoryProbeOptions) {
    this.#options = { intervalMs: DEFAULT_SAMPLE_INTERVAL_MS, now: Date.now, ...options };
    this.#gpus = [...options.gpus];
  }

  gpus(): readonly GpuInfo[] {
    return this.#gpus;
  }

  /** The reserve on each GPU, summed: a slot over a group keeps it free on every GPU of the group. */
  reserveBytes(totalBytes: number): number {
    if (this.#gpus.length <= 1) return this.#options.reserveBytes ?? defaultReserveBytes(totalBytes);
    return this.#gpus.reduce(
      (sum, gpu) => sum + (this.#options.reserveBytes ?? defaultReserveBytes(gpu.memory_total_bytes ?? 0)),
      0,
    );
  }

  read(): Promise<MemoryReading> {
    const now = this.#options.now();
    if (this.#reading && now - this.#reading.at < this.#options.intervalMs) return Promise.resolve(this.#reading);
    this.#inflight ??= this.#sample().finally(() => {
      this.#inflight = null;
    });
    return this.#inflight;
  }

  async #sample(): Promise<MemoryReading> {
    const now = this.#options.now();
    try {
      if (this.#gpus.some(isMigDevice)) {
        // A MIG device's memory is not in --query-gpu (one row for the whole GPU): the table's MIG section has it.
        this.#gpus = applyMigSamples(this.#gpus, await sampleMigDevices(this.#options.nvidiaSmi));
      } else {
        this.#gpus = applyGpuSamples(this.#gpus, await sampleGpus(this.#options.nvidiaSmi));
      }
      if (this.#failing) this.#options.logger.info("nvidia-smi answers again");
      this.#failing = false;
      this.#reading = {
        freeBytes: sumKnown(this.#gpus.map((gpu) => gpu.memory_free_bytes)),
        totalBytes: sumKnown(this.#gpus.map((gpu) => gpu.memory_total_bytes)),
        at: now,
      };
    } catch (error) {
      if (!this.#failing) this.#options.logger.warn({ err: error }, "nvidia-smi sample failed; using the last one");
      this.#failing = true;
      const last = this.#reading;
      // Keep a recent sample; past STALE_AFTER_MS read as full, so nothing new is loaded.
      if (last && now - last.at < STALE_AFTER_MS) return last;
      return { freeBytes: 0, totalBytes: last?.totalBytes ?? 0, at: now };
    }
    return this.#reading;
  }
}

export interface RamMemoryProbeOptions {
  /** Configured reserve; null: min(8%, 1.6 GiB) of total RAM. */
  reserveBytes: number | null;
  /** @defaultValue os.freemem (MemAvailable on Linux) */
  freeBytes?: () => number;
  /** @defaultValue os.totalmem */
  totalBytes?: () => number;
  /** @defaultValue Date.now */
  now?: () => number;
}

/** Available RAM for CPU slots. Several CPU slots on one host share it. */
export class RamMemoryProbe implements MemoryProbe {
  readonly #free: () => number;
  readonly #total: () => number;
  readonly #now: () => number;
  readonly #reserve: number | null;

  constructor(options: RamMemoryProbeOptions) {
    this.#free = options.freeBytes ?? os.freemem;
    this.#total = options.totalBytes ?? os.totalmem;
    this.#now = options.now ?? Date.now;
    this.#reserve = options.reserveBytes;
  }

  gpus(): readonly GpuInfo[] {
    return [];
  }

  reserveBytes(totalBytes: number): number {
    return this.#reserve ?? defaultReserveBytes(totalBytes);
  }

  read(): Promise<MemoryReading> {
    return Promise.resolve({ freeBytes: this.#free(), totalBytes: this.#total(), at: this.#now() });
  }
}

const sumKnown = (values: readonly (number | null)[]): number =>
  values.reduce<number>((total, value) => total + (value ?? 0), 0);
