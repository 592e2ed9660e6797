import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Redis } from "ioredis";
import { Catalog, GiB, RedisKeys } from "@corral/shared";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { FileType, LLAMA2_7B, writeSyntheticGguf } from "../../../../test/support/gguf-writer.js";
import { ModelsFileError } from "./errors.js";
import { ModelCatalog, readCatalog } from "./model-catalog.js";
import { capturingLogger, linkSharedModels, tempModelsDir } from "./test-support/fixtures.js";

describe("ModelCatalog against real Redis", () => {
  let url: string;
  let redis: Redis;
  const prefix = uniquePrefix("catalog");
  const keys = new RedisKeys(prefix);
  let dir: string;
  let remove: () => Promise<void>;

  before(async () => {
    url = (await testRedis()).url;
    redis = new Redis(url);
    ({ dir, remove } = await tempModelsDir("redis"));
    await linkSharedModels(dir);
    await writeFile(
      join(dir, "models.yaml"),
      "models:\n  - file: stories260K.gguf\n    id: stories\n    aliases: [tiny-stories]\n    context_size: 512\n",
    );
  });
  after(async () => {
    await cleanupPrefix(url, prefix);
    redis.disconnect();
    await remove();
  });

  test("readCatalog gives null before anything is published", async () => {
    assert.equal(await readCatalog(redis, keys), null);
  });

  test("create scans, publishes, and reads back the same catalog", async () => {
    let clock = 1_700_000_000_000;
    const { logger } = capturingLogger();
    const catalog = await ModelCatalog.create({
      redis,
      keys,
      modelsDir: dir,
      defaultContextSize: 1024,
      defaultSequences: 2,
      logger,
      now: () => clock++,
    });
    assert.deepEqual(
      catalog.list().map((m) => m.id),
      ["llama-2-tiny-random", "stories"],
    );
    assert.equal(catalog.resolve("stories")?.file, "stories260K.gguf");
    assert.equal(catalog.resolve("tiny-stories")?.id, "stories");
    assert.equal(catalog.resolve("stories260K"), undefined, "the file name is not a name once an id is set");
    assert.equal(catalog.resolve("nope"), undefined);

    const published = await readCatalog(redis, keys);
    assert.ok(published);
    assert.deepEqual(published, catalog.catalog);
    assert.equal(published.updated_at, 1_700_000_000_000);
    assert.equal(published.models.find((m) => m.id === "stories")?.context_size, 512);
    assert.equal(published.models.find((m) => m.id === "llama-2-tiny-random")?.sequences, 2);
    // What is stored is plain JSON that the shared schema accepts as is.
    const raw = JSON.parse((await redis.get(keys.catalog))!) as unknown;
    assert.deepEqual(Catalog.parse(raw), published);
  });

  test("refresh picks up new files and republishes", async () => {
    const { logger } = capturingLogger();
    const catalog = await ModelCatalog.create({ redis, keys, modelsDir: dir, logger });
    const before = (await readCatalog(redis, keys))!;
    const version = await redis.get(keys.catalogVersion);
    assert.ok(version);
    await catalog.refresh();
    assert.equal(
      await redis.get(keys.catalogVersion),
      version,
      "a rescan that finds the same models keeps the version",
    );
    await writeSyntheticGguf(join(dir, "llama-2-7b.Q4_K_M.gguf"), { ...LLAMA2_7B, fileType: FileType.MOSTLY_Q4_K_M });
    try {
      const after = await catalog.refresh();
      assert.notEqual(await redis.get(keys.catalogVersion), version, "new models, new version");
      assert.deepEqual(
        catalog.list().map((m) => m.id),
        ["llama-2-7b.Q4_K_M", "llama-2-tiny-random", "stories"],
      );
      assert.ok(after.updated_at >= before.updated_at);
      const published = (await readCatalog(redis, keys))!;
      assert.deepEqual(published, after);
      assert.ok(catalog.resolve("llama-2-7b.Q4_K_M")!.requirement_bytes > 3.5 * GiB);
    } finally {
      await unlink(join(dir, "llama-2-7b.Q4_K_M.gguf"));
    }
    await catalog.refresh();
    assert.equal(catalog.resolve("llama-2-7b.Q4_K_M"), undefined);
    assert.equal((await readCatalog(redis, keys))!.models.length, 2);
  });

  test("concurrent refreshes run one after another and all succeed", async () => {
    const { logger } = capturingLogger();
    const catalog = await ModelCatalog.create({ redis, keys, modelsDir: dir, logger });
    const results = await Promise.all([catalog.refresh(), catalog.refresh(), catalog.refresh()]);
    for (const result of results) assert.equal(result.models.length, 2);
  });

  test("a failed refresh keeps the previous catalog, here and in Redis", async () => {
    const { logger } = capturingLogger();
    const catalog = await ModelCatalog.create({ redis, keys, modelsDir: dir, logger });
    const published = await readCatalog(redis, keys);
    const yaml = join(dir, "models.yaml");
    await writeFile(yaml, "models:\n  - file: stories260K.gguf\n    sequences: many\n");
    try {
      await assert.rejects(catalog.refresh(), ModelsFileError);
      assert.equal(catalog.list().length, 2);
      assert.equal(catalog.resolve("tiny-stories")?.id, "stories");
      assert.deepEqual(await readCatalog(redis, keys), published);
    } finally {
      await writeFile(yaml, "models:\n  - file: stories260K.gguf\n    id: stories\n    aliases: [tiny-stories]\n");
    }
    // The next refresh works again.
    await catalog.refresh();
    assert.equal(catalog.resolve("tiny-stories")?.id, "stories");
  });

  test("create rejects a bad models.yaml with the file and field", async () => {
    const { dir: badDir, remove: removeBad } = await tempModelsDir("bad");
    try {
      await writeFile(join(badDir, "models.yaml"), "models:\n  - file: x.gguf\n    vram: -3\n");
      const { logger } = capturingLogger();
      await assert.rejects(ModelCatalog.create({ redis, keys, modelsDir: badDir, logger }), (error: unknown) => {
        assert.ok(error instanceof ModelsFileError);
        assert.equal(error.field, "models.0.vram");
        return true;
      });
    } finally {
      await removeBad();
    }
  });

  test("readCatalog rejects a stored value that does not match the schema", async () => {
    const otherKeys = new RedisKeys(`${prefix}-bad`);
    try {
      await redis.set(otherKeys.catalog, JSON.stringify({ models: [{ id: "x" }], updated_at: 1 }));
      await assert.rejects(readCatalog(redis, otherKeys));
    } finally {
      await cleanupPrefix(url, `${prefix}-bad`);
    }
  });

  test("an empty or missing models folder publishes an empty catalog", async () => {
    const { logger, warnings } = capturingLogger();
    const catalog = await ModelCatalog.create({ redis, keys, modelsDir: join(dir, "missing"), logger });
    assert.deepEqual(catalog.list(), []);
    assert.deepEqual((await readCatalog(redis, keys))?.models, []);
    assert.equal(warnings().length, 1);
  });

  test("rescanEvery serves models added to and removed from the folder without a restart, until stopped", async () => {
    const { dir: live, remove: removeLive } = await tempModelsDir("rescan");
    const liveKeys = new RedisKeys(`${prefix}-rescan`);
    const { logger, lines } = capturingLogger();
    const catalog = await ModelCatalog.create({ redis, keys: liveKeys, modelsDir: live, logger });
    const stop = catalog.rescanEvery(50);
    const until = async (what: string, check: () => Promise<boolean>) => {
      for (let i = 0; i < 200; i++) {
        if (await check()) return;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.fail(`timed out waiting until ${what}`);
    };
    const published = async () => ((await readCatalog(redis, liveKeys))?.models ?? []).map((m) => m.id);
    try {
      assert.deepEqual(catalog.list(), []);
      await linkSharedModels(live, ["stories260K.gguf"]);
      await until("the new model is served", async () => catalog.resolve("stories260K") !== undefined);
      await until("the new model is published", async () => (await published()).includes("stories260K"));
      const announced = lines.filter((line) => line.msg.startsWith("published catalog"));
      assert.deepEqual(announced.at(-1)?.added, ["stories260K"]);
      // Rescans that find nothing new say so at debug only.
      const infoLines = announced.length;
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(lines.filter((line) => line.msg.startsWith("published catalog")).length, infoLines);
      assert.ok(lines.some((line) => line.msg === "models folder unchanged" && line.level === 20));

      await unlink(join(live, "stories260K.gguf"));
      await until("the removed model is gone", async () => catalog.resolve("stories260K") === undefined);
      await until("the removed model is unpublished", async () => (await published()).length === 0);

      stop();
      await new Promise((resolve) => setTimeout(resolve, 100));
      await linkSharedModels(live, ["stories260K.gguf"]);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(catalog.resolve("stories260K"), undefined, "no rescan after stop");
    } finally {
      stop();
      await removeLive();
      await cleanupPrefix(url, `${prefix}-rescan`);
    }
  });

  test("a rescan that meets a bad models.yaml keeps the previous catalog and logs a warning", async () => {
    const { dir: live, remove: removeLive } = await tempModelsDir("rescan-bad");
    const liveKeys = new RedisKeys(`${prefix}-rescan-bad`);
    const { logger, warnings } = capturingLogger();
    await linkSharedModels(live, ["stories260K.gguf"]);
    const catalog = await ModelCatalog.create({ redis, keys: liveKeys, modelsDir: live, logger });
    const stop = catalog.rescanEvery(50);
    try {
      await writeFile(join(live, "models.yaml"), "models:\n  - file: stories260K.gguf\n    sequences: lots\n");
      for (let i = 0; i < 100 && !warnings().some((w) => /rescanning the models folder failed/.test(w.msg)); i++)
        await new Promise((resolve) => setTimeout(resolve, 20));
      assert.ok(warnings().some((w) => /rescanning the models folder failed/.test(w.msg)));
      assert.equal(catalog.resolve("stories260K")?.id, "stories260K");
      assert.deepEqual(
        (await readCatalog(redis, liveKeys))?.models.map((m) => m.id),
        ["stories260K"],
      );
    } finally {
      stop();
      await removeLive();
      await cleanupPrefix(url, `${prefix}-rescan-bad`);
    }
  });

  test("watch rescans once per burst of changes, at most 4 × the debounce into a burst, and calls onScanned", async () => {
    const { dir: live, remove: removeLive } = await tempModelsDir("watch");
    const liveKeys = new RedisKeys(`${prefix}-watch`);
    const { logger } = capturingLogger();
    const scans: string[][] = [];
    const catalog = await ModelCatalog.create({
      redis,
      keys: liveKeys,
      modelsDir: live,
      logger,
      onScanned: (models) => scans.push(models.map((m) => m.id)),
    });
    const stop = catalog.watch(200);
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    try {
      assert.deepEqual(scans, [[]], "create's own scan");
      await linkSharedModels(live, ["stories260K.gguf", "llama-2-tiny-random.gguf"]);
      await sleep(600);
      assert.deepEqual(scans, [[], ["llama-2-tiny-random", "stories260K"]], "two files, one rescan");

      // A file written to every 50 ms for 2 s (a download): the rescan comes within
      // 4 × 200 ms of the burst's start, not after it ends.
      const started = Date.now();
      let seenAfter: number | null = null;
      await unlink(join(live, "stories260K.gguf"));
      while (Date.now() - started < 2000) {
        await writeFile(join(live, "big.gguf.part"), String(Date.now()), { flag: "a" });
        if (seenAfter === null && catalog.resolve("stories260K") === undefined) seenAfter = Date.now() - started;
        await sleep(50);
      }
      assert.ok(seenAfter !== null && seenAfter < 1500, `the removal was seen after ${seenAfter} ms of the burst`);
    } finally {
      stop();
      await removeLive();
      await cleanupPrefix(url, `${prefix}-watch`);
    }
  });
});
