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
  /**
   * Set on a group slot the supervisor formed on demand (`DynamicGroups`): it claims only
   * the models that need more than `minRequirementBytes` (more than any one GPU of the host
   * holds), and exits once it has run no job for `retireWhenIdleMs` (CORRAL_KEEP_ALIVE), so
   * that its GPUs get their own slots back.
   */
  dynamicGroup?: { minRequirementBytes: number; retireWhenIdleMs: number };
  /**
   * The capacity of the largest group this slot's GPU could join (dynamic groups), for the
   * heartbeat's `group_budget_total_bytes`; absent when it never groups.
   */
  groupBudgetBytes?: number;
}

/** Supervisor → slot messages over the fork IPC channel. */
export type SupervisorMessage =
  /** `lockTokenPrefix`: unique to this process (`<slot id>:<pid>:<random>:`); see SlotOptions. */
  | { type: "start"; config: WorkerConfig; slot: SlotSpec; lockTokenPrefix: string }
  | { type: "metrics-request"; requestId: number }
  /** Exit at the next moment no job runs here (its GPU joins a group); see `RetireWatch`. */
  | { type: "retire" };

/** Slot → supervisor messages. */
export type SlotMessage =
  | { type: "ready"; slot: string }
  | { type: "metrics"; requestId: number; metrics: unknown[] }
  | { type: "fatal"; message: string }
  /** The slot exits on its own (it retired), and is not to be restarted. */
  | { type: "retiring"; why: string };
