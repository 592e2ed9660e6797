import type { CatalogModel } from "@corral/shared";

/** Read-side view of the model catalog, as the HTTP API uses it. */
export interface ModelCatalogView {
  /** Every model, sorted by id. */
  list(): readonly CatalogModel[];
  /** A model by id or alias. */
  resolve(name: string): CatalogModel | undefined;
}
