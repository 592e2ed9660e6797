import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { UnschedulableError, type CatalogModel, type GpuInfo, type WorkerState } from "@corral/shared";
import { assertPlaceable } from "./placement.js";
import { catalogModel } from "../../../../../test/support/models.js";

const GiB = 1024 ** 3;
const model = (placement: CatalogModel["placement"], requirement = 4 * GiB): CatalogModel =>
  catalogModel("m", {
    file_size_bytes: 1,
    estimated_vram_bytes: requirement,
    estimated_ram_bytes: requirement,
    requirement_bytes: requirement,
    placement,
  });
const gpu = (index: number, name: string, totalGiB: number): GpuInfo => ({
  index,
  uuid: `GPU-${index}`,
  name,
  memory_total_bytes: totalGiB * GiB,
  memory_used_bytes: 0,
  memory_free_bytes: totalGiB * GiB,
  utilization_ratio: 0,
  temperature_celsius: null,
  power_watts: null,
  driver_version: null,
  compute_capability: null,
  mig_mode: "disabled",
  mig_instances: [],
});
const slot = (host: string, gpus: GpuInfo[], budgetGiB: number): WorkerState => ({
  id: `${host}:gpu${gpus.map((g) => g.index).join("+")}`,
  host,
  slot: "gpu",
  pid: 1,
  version: "0",
  mode: "gpu",
  gpus,
  cuda_version: null,
  host_info: null,
  budget_total_bytes: budgetGiB * GiB,
  budget_free_bytes: budgetGiB * GiB,
  loaded_models: [],
  active_jobs: [],
  state: "idle",
  started_at: 0,
  updated_at: 0,
});

describe("assertPlaceable with placement pins", () => {
  const workers = [slot("lab1", [gpu(0, "NVIDIA RTX A5000", 24)], 22), slot("lab2", [gpu(0, "NVIDIA H100", 80)], 78)];

  test("a pin that some live slot meets, with room: accepted", () => {
    assert.doesNotThrow(() => assertPlaceable(model({ gpu_names: ["h100"] }), workers));
    assert.doesNotThrow(() => assertPlaceable(model({ hosts: ["lab1"] }), workers));
    assert.doesNotThrow(() => assertPlaceable(model(null), workers));
  });

  test("pins that keep the model off every live slot: 503 naming placement", () => {
    assert.throws(
      () => assertPlaceable(model({ hosts: ["lab9"] }), workers),
      (error: unknown) =>
        error instanceof UnschedulableError &&
        /placement in models\.yaml/.test(error.message) &&
        /lab9/.test(error.message),
    );
  });

  test("the fit counts only the slots the pins allow", () => {
    // 40 GiB fits the H100 slot, but the model is pinned to lab1's 24 GiB A5000.
    assert.throws(
      () => assertPlaceable(model({ hosts: ["lab1"] }, 40 * GiB), workers),
      (error: unknown) => error instanceof UnschedulableError && /lab1:gpu0/.test(error.message),
    );
    // A group slot (two A5000) holds it.
    const group = slot("lab1", [gpu(0, "NVIDIA RTX A5000", 24), gpu(1, "NVIDIA RTX A5000", 24)], 44);
    assert.doesNotThrow(() => assertPlaceable(model({ hosts: ["lab1"] }, 40 * GiB), [...workers, group]));
    assert.throws(
      () => assertPlaceable(model({ hosts: ["lab1"], gpus: [1] }, 40 * GiB), [...workers, group]),
      UnschedulableError,
    );
  });

  test("a host with dynamic groups: a model larger than each GPU but within the group budget is accepted", () => {
    const a5000 = (index: number) => ({
      ...slot("lab1", [gpu(index, "NVIDIA RTX A5000", 24)], 22),
      id: `lab1:gpu${index}`,
      group_budget_total_bytes: 44 * GiB,
    });
    assert.doesNotThrow(() => assertPlaceable(model(null, 40 * GiB), [a5000(0), a5000(1)]));
    assert.throws(
      () => assertPlaceable(model(null, 50 * GiB), [a5000(0), a5000(1)]),
      (error: unknown) => error instanceof UnschedulableError && /lab1:gpu0/.test(error.message),
    );
  });

  test("no worker online: accepted whatever the pins", () => {
    assert.doesNotThrow(() => assertPlaceable(model({ hosts: ["lab9"] }), []));
  });
});
