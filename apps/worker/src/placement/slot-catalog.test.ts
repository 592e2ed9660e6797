import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { pino } from "pino";
import { RedisKeys, laneName, type Catalog, type CatalogModel } from "@corral/shared";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import type { PlacementDevice } from "./placement-policy.js";
import { SlotCatalog } from "./slot-catalog.js";
import { catalogModel } from "../../../../test/support/models.js";

const GiB = 1024 ** 3;
const model = (id: string, placement: CatalogModel["placement"] = null): CatalogModel =>
  catalogModel(id, { placement });

const a5000 = (gpuIndex: number): PlacementDevice => ({
  slot: `gpu${gpuIndex}`,
  gpuIndex,
  name: "NVIDIA RTX A5000",
  mig: false,
  totalBytes: 24564 * 1024 ** 2,
  freeBytes: 0,
  reserveBytes: 0,
});

describe("SlotCatalog on real Redis: a slot sees only the models it may claim", () => {
  let url: string;
  let redis: Redis;
  const prefix = uniquePrefix("slot-catalog");
  const keys = new RedisKeys(prefix);
  before(async () => {
    url = (await testRedis()).url;
    redis = new Redis(url);
    const catalog: Catalog = {
      models: [
        model("anywhere"),
        model("on-gpu1", { gpus: [1] }),
        model("on-h100", { gpu_names: ["H100"] }),
        model("on-lab2", { hosts: ["lab2"] }),
        model("big-gpus", { min_vram_bytes: 40 * GiB }),
        model("reserved-for"),
      ],
      updated_at: 1,
    };
    await redis.set(keys.catalog, JSON.stringify(catalog));
  });
  after(async () => {
    redis?.disconnect();
    await cleanupPrefix(url, prefix);
  });

  const visible = async (device: PlacementDevice, reservations: [number, string[]][] = []) => {
    const catalog = new SlotCatalog({
      redis,
      keys,
      refreshMs: 0,
      logger: pino({ level: "silent" }),
      host: { host: "lab1", reservations: new Map(reservations) },
      device,
    });
    await catalog.refresh(1);
    return catalog;
  };

  test("pins: gpus, gpu_names, hosts and min_vram hide the lanes of models this slot may not run", async () => {
    const gpu0 = await visible(a5000(0));
    assert.deepEqual(gpu0.lanes(), [laneName("anywhere"), laneName("reserved-for")]);
    assert.equal(gpu0.byLane(laneName("on-gpu1")), undefined);
    assert.equal(gpu0.byLane(laneName("anywhere"))?.id, "anywhere");
    const gpu1 = await visible(a5000(1));
    assert.deepEqual(gpu1.lanes(), [laneName("anywhere"), laneName("on-gpu1"), laneName("reserved-for")]);
    const h100 = await visible({ ...a5000(0), name: "NVIDIA H100 80GB HBM3", totalBytes: 80 * GiB });
    assert.deepEqual(h100.lanes(), [
      laneName("anywhere"),
      laneName("on-h100"),
      laneName("big-gpus"),
      laneName("reserved-for"),
    ]);
  });

  test("a GPU reserved for a model shows only that model; the other GPUs still show it", async () => {
    const reserved = await visible(a5000(0), [[0, ["reserved-for"]]]);
    assert.deepEqual(reserved.lanes(), [laneName("reserved-for")]);
    assert.equal(reserved.byLane(laneName("anywhere")), undefined);
    const other = await visible(a5000(1), [[0, ["reserved-for"]]]);
    assert.ok(other.lanes().includes(laneName("reserved-for")));
    assert.ok(other.lanes().includes(laneName("anywhere")));
  });
});
