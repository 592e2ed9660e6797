import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { CatalogModel, RedisKeys } from "@corral/shared";
import { CatalogCache } from "../claim/catalog-cache.js";
import { notAllowed, type PlacementDevice, type PlacementHost } from "./placement-policy.js";

export interface SlotCatalogOptions {
  redis: Redis;
  keys: RedisKeys;
  refreshMs: number;
  logger: Logger;
  /** This slot's worker id and the GPU reservations (`CORRAL_RESERVE_GPUS`); its devices are ignored. */
  host: Omit<PlacementHost, "devices" | "topology">;
  /** This slot's device. */
  device: PlacementDevice;
  /**
   * A group slot formed on demand claims only the models that need more than this (no one
   * GPU of its host holds them). @defaultValue 0 (every model)
   */
  minRequirementBytes?: number;
}

/**
 * The published catalog as one slot sees it: a model that placement rule 1 does not allow
 * on this slot (its `placement` pins, or a GPU reserved for other models) is not there, so
 * the claim loop never reads, waits on, or claims its lane. The claim policy is unchanged;
 * this is the one place the pins reach the claim. A group slot formed on demand also
 * leaves out the models small enough for one GPU (`minRequirementBytes`): the GPUs' own
 * slots run those once the group splits.
 */
export class SlotCatalog extends CatalogCache {
  readonly #host: PlacementHost;
  readonly #device: PlacementDevice;
  readonly #log: Logger;
  readonly #excluded = new Set<string>();
  readonly #minRequirementBytes: number;

  constructor(options: SlotCatalogOptions) {
    super(options);
    this.#host = { ...options.host, devices: [options.device], topology: null };
    this.#device = options.device;
    this.#log = options.logger;
    this.#minRequirementBytes = options.minRequirementBytes ?? 0;
  }

  #allowed(model: CatalogModel): boolean {
    if (model.requirement_bytes <= this.#minRequirementBytes) return false;
    const reason = notAllowed(
      { id: model.id, requirementBytes: model.requirement_bytes, placement: model.placement ?? null },
      this.#host,
      this.#device,
    );
    if (reason !== null && !this.#excluded.has(model.id)) {
      this.#excluded.add(model.id);
      this.#log.info({ model: model.id, reason }, "this slot does not claim %s: %s", model.id, reason);
    }
    return reason === null;
  }

  override lanes(): string[] {
    return super.lanes().filter((lane) => this.#allowed(super.byLane(lane)!));
  }

  override byLane(lane: string): CatalogModel | undefined {
    const model = super.byLane(lane);
    return model !== undefined && this.#allowed(model) ? model : undefined;
  }
}
