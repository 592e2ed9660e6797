import type { GpuInfo } from "@corral/shared";
import type { SlotIdentity } from "../claim/types.js";
import type { WorkerConfig } from "../env.js";

/** What the supervisor tells a slot process about itself. */
export interface SlotSpec extends SlotIdentity {
  /**
   * The slot's GPUs as discovered (one today): a whole GPU, or one MIG device shown as a GPU
   * with its own UUID and memory (`migDeviceAsGpu`). Empty for CPU slots.
   */
  gpus: GpuInfo[];
  /**
   * What the slot's process gets in `CUDA_VISIBLE_DEVICES`: nvidia-smi indexes (with
   * `CUDA_DEVICE_ORDER=PCI_BUS_ID`) for whole GPUs, the `MIG-…` UUID for a MIG device.
   * Empty for CPU slots.
   */
  devices: string[];
  cudaVersion: string | null;
  /** llama.cpp threads for this slot's contexts (with `calibrateThreads`: the most it tries). */
  threads: number;
  /** No CORRAL_THREADS: on the CPU each model keeps the faster of 1 and `threads`, timed when it loads. */
  calibrateThreads: boolean;
}

/** Supervisor → slot messages over the fork IPC channel. */
export type SupervisorMessage =
  /** `lockTokenPrefix`: unique to this process (`<slot id>:<pid>:<random>:`); see SlotOptions. */
  | { type: "start"; config: WorkerConfig; slot: SlotSpec; lockTokenPrefix: string }
  | { type: "metrics-request"; requestId: number };

/** Slot → supervisor messages. */
export type SlotMessage =
  | { type: "ready"; slot: string }
  | { type: "metrics"; requestId: number; metrics: unknown[] }
  | { type: "fatal"; message: string };
