import { UnschedulableError, type CatalogModel, type WorkerState } from "@corral/shared";
import { requirementOn } from "@corral/shared";

const GIB = 1024 ** 3;
const gib = (bytes: number): string => `${(bytes / GIB).toFixed(2)} GiB`;

/**
 * Whether any live worker slot could ever run `model`: a slot fits when its whole budget
 * (`budget_total_bytes`: VRAM on GPU slots, RAM on CPU slots) holds the model's
 * requirement on that kind of slot (what the claim loop compares). When no worker is
 * online the request is accepted and waits in its lane, since one may come.
 * @throws UnschedulableError (503) naming the requirement and the largest slot.
 */
export function assertPlaceable(model: CatalogModel, workers: readonly WorkerState[]): void {
  if (workers.length === 0) return;
  if (workers.some((w) => w.budget_total_bytes >= requirementOn(w.mode, model))) return;
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
