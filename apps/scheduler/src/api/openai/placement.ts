import { UnschedulableError, pinnedOut, type CatalogModel, type WorkerState } from "@corral/shared";
import { requirementOn } from "@corral/shared";

const GIB = 1024 ** 3;
const gib = (bytes: number): string => `${(bytes / GIB).toFixed(2)} GiB`;

/**
 * Whether any live worker slot could ever run `model`: a slot counts when the model's
 * `placement` pins allow it (its host and GPUs, as its heartbeat reports them; GPU
 * reservations are the workers' own and not seen here) and its whole budget
 * (`budget_total_bytes`: VRAM on GPU slots, RAM on CPU slots) holds the model's
 * requirement on that kind of slot (what the claim loop compares), or, on a host with
 * dynamic groups, the largest group its GPU could join (`group_budget_total_bytes`): the
 * worker forms that group when the job waits. When no worker is online the request is
 * accepted and waits in its lane, since one may come.
 * @throws UnschedulableError (503) naming the pins that exclude every slot, or the
 * requirement and the largest slot.
 */
export function assertPlaceable(model: CatalogModel, all: readonly WorkerState[]): void {
  if (all.length === 0) return;
  const reasons = all.map((w) => pinnedOut(model.placement, w.host, w.mode === "gpu" ? pinnedGpus(w) : []));
  const workers = all.filter((_, i) => reasons[i] === null);
  if (workers.length === 0)
    throw new UnschedulableError(
      `No online worker may run model ${model.id}: its placement in models.yaml keeps it off every one of the ` +
        `${all.length} worker slots (${all[0]!.id}: ${reasons[0]}). Change placement, or start a worker it allows.`,
    );
  if (
    workers.some(
      (w) =>
        w.budget_total_bytes >= requirementOn(w.mode, model) ||
        (w.group_budget_total_bytes ?? 0) >= requirementOn(w.mode, model),
    )
  )
    return;
  const largest = workers.reduce((a, b) => (b.budget_total_bytes > a.budget_total_bytes ? b : a));
  const need = requirementOn(largest.mode, model);
  const memory = largest.mode === "gpu" ? "VRAM" : "RAM";
  throw new UnschedulableError(
    `No online worker can run model ${model.id}: it needs ${need} bytes (${gib(need)}) of ${memory} ` +
      `(context ${model.context_size} × ${model.sequences} sequences), but the largest worker slot, ` +
      `${largest.id}, has ${largest.budget_total_bytes} bytes (${gib(largest.budget_total_bytes)}) in all. ` +
      `Lower context_size or sequences in models.yaml, or add a bigger GPU.`,
  );
}

/** A slot's GPUs as pins see them (a group slot has several; a MIG slot its device, under its GPU's index). */
const pinnedGpus = (w: WorkerState) =>
  w.gpus.map((gpu) => ({ index: gpu.index, name: gpu.name, totalBytes: gpu.memory_total_bytes ?? 0 }));
