export { WORKER_ENV, loadConfig, type EnvVarDoc, type WorkerConfig } from "./env.js";
export { main } from "./main.js";
export {
  startWorker,
  type RunningWorker,
  type SlotStatus,
  type StartWorkerOptions,
} from "./supervisor/start-worker.js";
export { planSlots } from "./supervisor/plan-slots.js";
export {
  DynamicGroups,
  type DynamicGroupsOptions,
  type GroupControl,
  type GroupEvent,
} from "./supervisor/dynamic-groups.js";
export { SlotRecovery, type RecoveredJob, type SlotRecoveryOptions } from "./supervisor/slot-recovery.js";
export { MAX_STALLED_COUNT } from "./claim/lane-workers.js";
export { Slot, type SlotOptions } from "./slot/slot.js";
export { SlotMetrics, type JobPhase, type SlotMetricsOptions } from "./slot/slot-metrics.js";
export type { SlotSpec } from "./slot/types.js";
export {
  compareLanes,
  decideClaim,
  type ClaimDecision,
  type LaneView,
  type LoadedView,
  type PolicyInput,
} from "./claim/claim-policy.js";
export { requirementOn } from "@corral/shared";
export { GpuMemoryProbe, RamMemoryProbe, type MemoryProbe, type MemoryReading } from "./claim/memory-probe.js";
export type { FailureKind, ModelEngine, ModelHandle, RunOutput, SlotIdentity } from "./claim/types.js";
export { hostInfo } from "./host/host-info.js";
export * from "./gpu/index.js";
export * from "./engine/index.js";
export {
  notAllowed,
  pinnedOut,
  placeModel,
  yieldToGroup,
  type PlacementChoice,
  type PlacementDevice,
  type PlacementHost,
  type PlacementModel,
  type PlacementOption,
} from "./placement/placement-policy.js";
export {
  buildWorkerPlan,
  formatWorkerPlan,
  placementDevices,
  reservationsOf,
  type PlannedModel,
  type PlannedOption,
  type PlannedSlot,
  type WorkerPlan,
  type WorkerPlanInput,
} from "./placement/worker-plan.js";
