import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile, unlink, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { GgufInsights, readGgufFileInfo } from "node-llama-cpp";
import { GiB, type CatalogModel } from "@corral/shared";
import { FileType, LLAMA2_70B, LLAMA2_7B, writeSyntheticGguf } from "../../../../test/support/gguf-writer.js";
import { sharedModelsDir } from "../../../../test/support/models.js";
import { ModelsFileError } from "./errors.js";
import { scanModels } from "./scan-models.js";
import { capturingLogger, linkSharedModels, tempModelsDir } from "./test-support/fixtures.js";

const byId = (models: CatalogModel[], id: string): CatalogModel => {
  const model = models.find((m) => m.id === id);
  assert.ok(model, `no model ${id} in ${models.map((m) => m.id).join(", ")}`);
  return model;
};

/** node-llama-cpp's own formula estimate, computed here straight from the estimators. */
async function llamaCppEstimate(path: string, contextSize: number, sequences: number): Promise<number> {
  const insights = await GgufInsights.from(await readGgufFileInfo(path, { logWarnings: false }));
  const gpuLayers = insights.totalLayers;
  const model = insights.estimateModelResourceRequirements({ gpuLayers });
  const context = insights.estimateContextResourceRequirements({ contextSize, sequences, modelGpuLayers: gpuLayers });
  return model.gpuVram + context.gpuVram;
}

/** F16 KV cache bytes of a llama model: K and V, per layer, per cell. */
const kvCacheBytes = (spec: typeof LLAMA2_7B, cells: number): number =>
  2 * spec.blockCount * cells * (spec.embeddingLength / spec.headCount) * spec.headCountKv * 2;

describe("scanModels on the real tiny models", () => {
  test("reads ids, architecture, parameters, layers and contexts from the GGUF headers", async () => {
    const { logger, warnings } = capturingLogger();
    const models = await scanModels({
      modelsDir: sharedModelsDir(),
      defaultContextSize: 4096,
      defaultSequences: 2,
      logger,
    });
    assert.deepEqual(
      models
        .filter((m) => m.kind === "llm")
        .map((m) => m.id)
        .sort(),
      ["llama-2-tiny-random", "stories260K"],
    );
    assert.deepEqual(warnings(), []);

    const stories = byId(models, "stories260K");
    assert.equal(stories.file, "stories260K.gguf");
    assert.equal(stories.architecture, "llama");
    assert.equal(stories.parameters, 292_800);
    assert.equal(stories.layers, 6);
    assert.equal(stories.train_context_size, 2048);
    assert.equal(stories.context_size, 2048, "default context is capped at the training context");
    assert.equal(stories.sequences, 2);
    assert.equal(stories.embedding_length, 64);
    assert.equal(stories.has_chat_template, false);
    assert.equal(stories.file_size_bytes, 1_185_376);
    assert.deepEqual(stories.aliases, []);
    assert.ok(stories.estimated_vram_bytes > stories.file_size_bytes / 2);
    assert.ok(stories.estimated_ram_bytes > 0);
    assert.equal(stories.vram_override_bytes, null);
    assert.equal(stories.requirement_bytes, stories.estimated_vram_bytes);
    assert.ok(stories.created_at > 0);

    const random = byId(models, "llama-2-tiny-random");
    assert.equal(random.architecture, "llama");
    assert.equal(random.parameters, 513_048);
    assert.equal(random.layers, 2);
    assert.equal(random.train_context_size, 4096);
    assert.equal(random.context_size, 4096);
    assert.equal(random.embedding_length, 8);
    assert.ok(random.requirement_bytes > 0);
  });

  test("a missing folder gives an empty list and a warning, not a throw", async () => {
    const { logger, warnings } = capturingLogger();
    const dir = join(sharedModelsDir(), "does-not-exist");
    assert.deepEqual(await scanModels({ modelsDir: dir, defaultContextSize: 512, defaultSequences: 1, logger }), []);
    assert.equal(warnings().length, 1);
    assert.match(warnings()[0]!.msg, /does-not-exist/);
  });
});

describe("scanModels sizing synthetic Llama-2 models", () => {
  let dir: string;
  let remove: () => Promise<void>;
  let models: CatalogModel[];
  let path7b: string;
  let path70b: string;
  let weights7b: number;
  let weights70b: number;

  before(async () => {
    ({ dir, remove } = await tempModelsDir("synthetic"));
    path7b = join(dir, "llama-2-7b.Q4_K_M.gguf");
    path70b = join(dir, "llama-2-70b.Q4_K_M.gguf");
    weights7b = (await writeSyntheticGguf(path7b, { ...LLAMA2_7B, fileType: FileType.MOSTLY_Q4_K_M })).dataBytes;
    weights70b = (await writeSyntheticGguf(path70b, { ...LLAMA2_70B, fileType: FileType.MOSTLY_Q4_K_M })).dataBytes;
    await writeSyntheticGguf(join(dir, "llama-2-7b.F16.gguf"), {
      ...LLAMA2_7B,
      fileType: FileType.MOSTLY_F16,
      chatTemplate: "{% for m in messages %}{{ m.content }}{% endfor %}",
    });
    await writeFile(
      join(dir, "models.yaml"),
      [
        "models:",
        "  - file: llama-2-7b.Q4_K_M.gguf",
        "    id: 7b",
        "  - file: llama-2-7b.Q4_K_M.gguf",
        "    id: 7b-ctx2048",
        "    context_size: 2048",
        "  - file: llama-2-7b.Q4_K_M.gguf",
        "    id: 7b-ctx2048-x4",
        "    context_size: 2048",
        "    sequences: 4",
        "  - file: llama-2-70b.Q4_K_M.gguf",
        "    id: 70b",
        "",
      ].join("\n"),
    );
    const { logger, warnings } = capturingLogger();
    models = await scanModels({ modelsDir: dir, defaultContextSize: 8192, defaultSequences: 1, logger });
    assert.deepEqual(warnings(), []);
  });
  after(() => remove());

  test("parameter counts and layers come from the tensor shapes", () => {
    const m7 = byId(models, "7b");
    const m70 = byId(models, "70b");
    assert.ok(Math.abs(m7.parameters - 6.74e9) < 0.05e9, `7B parameters ${m7.parameters}`);
    assert.ok(Math.abs(m70.parameters - 68.98e9) < 0.5e9, `70B parameters ${m70.parameters}`);
    assert.equal(m7.layers, 33);
    assert.equal(m70.layers, 81);
    assert.equal(m7.train_context_size, 4096);
    assert.equal(m7.context_size, 4096, "default 8192 is capped at the training context");
    assert.equal(m7.embedding_length, 4096);
    assert.equal(m7.has_chat_template, false);
    assert.equal(byId(models, "llama-2-7b.F16").has_chat_template, true);
    // Real Llama-2-7B Q4_K_M is 4.08 GB and 70B Q4_K_M 41.4 GB; the sparse files match.
    assert.ok(Math.abs(m7.file_size_bytes - 4.08e9) < 0.05e9, `7B file ${m7.file_size_bytes}`);
    assert.ok(Math.abs(m70.file_size_bytes - 41.4e9) < 0.5e9, `70B file ${m70.file_size_bytes}`);
  });

  test("the requirement lands in the real-world range for Llama-2 Q4_K_M at 4096 tokens", () => {
    const m7 = byId(models, "7b");
    const m70 = byId(models, "70b");
    assert.ok(
      m7.requirement_bytes > 3.5 * GiB && m7.requirement_bytes < 8 * GiB,
      `7B: ${m7.requirement_bytes / GiB} GiB`,
    );
    assert.ok(
      m70.requirement_bytes > 35 * GiB && m70.requirement_bytes < 50 * GiB,
      `70B: ${m70.requirement_bytes / GiB} GiB`,
    );
    const ratio = m70.requirement_bytes / m7.requirement_bytes;
    assert.ok(ratio > 5 && ratio < 12, `70B/7B requirement ratio ${ratio}`);
  });

  test("the requirement covers the weights plus the KV cache, with bounded overhead", () => {
    for (const [id, spec, weights] of [
      ["7b", LLAMA2_7B, weights7b],
      ["70b", LLAMA2_70B, weights70b],
    ] as const) {
      const model = byId(models, id);
      const floor = weights + kvCacheBytes(spec, model.context_size * model.sequences);
      const ratio = model.requirement_bytes / floor;
      assert.ok(ratio > 0.97 && ratio < 1.2, `${id}: requirement / (weights + KV) = ${ratio}`);
      assert.ok(model.estimated_ram_bytes >= weights, `${id}: a CPU load holds every weight in RAM`);
    }
  });

  test("the requirement grows with context size and with sequences, by about the KV cache", () => {
    const ctx2048 = byId(models, "7b-ctx2048");
    const ctx4096 = byId(models, "7b");
    const ctx2048x4 = byId(models, "7b-ctx2048-x4");
    assert.equal(ctx2048.context_size, 2048);
    assert.equal(ctx2048x4.sequences, 4);
    const moreContext = ctx4096.requirement_bytes - ctx2048.requirement_bytes;
    const moreSequences = ctx2048x4.requirement_bytes - ctx2048.requirement_bytes;
    assert.ok(moreContext >= 0.9 * kvCacheBytes(LLAMA2_7B, 2048), `4096 vs 2048 tokens adds ${moreContext / GiB} GiB`);
    assert.ok(
      moreSequences >= 0.9 * kvCacheBytes(LLAMA2_7B, 3 * 2048),
      `4 vs 1 sequences adds ${moreSequences / GiB} GiB`,
    );
    assert.ok(ctx2048x4.estimated_ram_bytes > ctx2048.estimated_ram_bytes);
  });

  test("the requirement is within 25% of node-llama-cpp's own estimate", async () => {
    for (const [id, path] of [
      ["7b", path7b],
      ["7b-ctx2048-x4", path7b],
      ["70b", path70b],
    ] as const) {
      const model = byId(models, id);
      const reference = await llamaCppEstimate(path, model.context_size, model.sequences);
      const ratio = model.requirement_bytes / reference;
      assert.ok(ratio > 0.75 && ratio < 1.25, `${id}: ours / node-llama-cpp = ${ratio}`);
    }
  });
});

describe("scanModels with models.yaml", () => {
  let dir: string;
  let remove: () => Promise<void>;
  before(async () => {
    ({ dir, remove } = await tempModelsDir("yaml"));
    await linkSharedModels(dir);
  });
  after(() => remove());

  test("applies ids, aliases, context_size, sequences and the vram override", async () => {
    await writeFile(
      join(dir, "models.yaml"),
      [
        "models:",
        "  - file: stories260K.gguf",
        "    id: stories",
        "    aliases: [tiny-stories, stories260K, stories, tiny-stories]",
        "    context_size: 512",
        "    sequences: 4",
        "    vram: 20GiB",
        "",
      ].join("\n"),
    );
    const { logger, warnings } = capturingLogger();
    const models = await scanModels({ modelsDir: dir, defaultContextSize: 1024, defaultSequences: 1, logger });
    assert.deepEqual(warnings(), []);
    assert.deepEqual(models.map((m) => m.id).sort(), ["llama-2-tiny-random", "stories"]);
    const stories = byId(models, "stories");
    assert.deepEqual(stories.aliases, ["tiny-stories", "stories260K"]);
    assert.equal(stories.file, "stories260K.gguf");
    assert.equal(stories.context_size, 512);
    assert.equal(stories.sequences, 4);
    assert.equal(stories.vram_override_bytes, 20 * GiB);
    assert.equal(stories.requirement_bytes, 20 * GiB);
    assert.ok(stories.estimated_vram_bytes > 0 && stories.estimated_vram_bytes < 20 * GiB);

    const random = byId(models, "llama-2-tiny-random");
    assert.equal(random.context_size, 1024, "files the YAML does not mention get the defaults");
    assert.equal(random.sequences, 1);
    assert.equal(random.vram_override_bytes, null);
    assert.equal(stories.placement, null);
  });

  test("placement: pins go into the catalog (min_vram as bytes); an empty placement is none", async () => {
    await writeFile(
      join(dir, "models.yaml"),
      [
        "models:",
        "  - file: stories260K.gguf",
        "    placement:",
        "      hosts: [lab1, lab2]",
        "      gpu_names: [A5000]",
        "      gpus: [0, 1]",
        "      min_vram: 24GiB",
        "  - file: llama-2-tiny-random.gguf",
        "    placement: {}",
        "",
      ].join("\n"),
    );
    const { logger } = capturingLogger();
    const models = await scanModels({ modelsDir: dir, defaultContextSize: 256, defaultSequences: 1, logger });
    assert.deepEqual(byId(models, "stories260K").placement, {
      hosts: ["lab1", "lab2"],
      gpu_names: ["A5000"],
      gpus: [0, 1],
      min_vram_bytes: 24 * GiB,
    });
    assert.equal(byId(models, "llama-2-tiny-random").placement, null);
  });

  test("split_mode and tensor_split are refused by name with a warning (node-llama-cpp 3.21.1 cannot pass them); the model stays", async () => {
    await writeFile(
      join(dir, "models.yaml"),
      [
        "models:",
        "  - file: stories260K.gguf",
        "    split_mode: row",
        "    tensor_split: [3, 1]",
        "  - file: llama-2-tiny-random.gguf",
        "",
      ].join("\n"),
    );
    const { logger, warnings } = capturingLogger();
    const models = await scanModels({ modelsDir: dir, defaultContextSize: 256, defaultSequences: 1, logger });
    assert.deepEqual(models.map((m) => m.id).sort(), ["llama-2-tiny-random", "stories260K"]);
    assert.equal(warnings().length, 1);
    assert.match(
      warnings()[0]!.msg,
      /^stories260K: split_mode and tensor_split not applied: node-llama-cpp 3\.21\.1 cannot/,
    );
    assert.ok(!("split_mode" in byId(models, "stories260K")), "nothing of them reaches the catalog");
  });

  test("duplicate ids and aliases: the first model keeps the name, with a warning", async () => {
    await writeFile(
      join(dir, "models.yaml"),
      [
        "models:",
        "  - file: stories260K.gguf",
        "    id: shared-name",
        "    aliases: [taken]",
        "  - file: llama-2-tiny-random.gguf",
        "    id: shared-name",
        "  - file: llama-2-tiny-random.gguf",
        "    id: random",
        "    aliases: [taken, fresh]",
        "",
      ].join("\n"),
    );
    const { logger, warnings } = capturingLogger();
    const models = await scanModels({ modelsDir: dir, defaultContextSize: 256, defaultSequences: 1, logger });
    assert.deepEqual(models.map((m) => m.id).sort(), ["random", "shared-name"]);
    assert.equal(byId(models, "shared-name").file, "stories260K.gguf");
    assert.deepEqual(byId(models, "random").aliases, ["fresh"]);
    assert.equal(warnings().length, 2);
    assert.ok(warnings().every((w) => /taken|shared-name/.test(w.msg)));
  });

  test("an entry for a file that does not exist is skipped with a warning", async () => {
    await writeFile(join(dir, "models.yaml"), "models:\n  - file: missing.gguf\n    id: ghost\n");
    const { logger, warnings } = capturingLogger();
    const models = await scanModels({ modelsDir: dir, defaultContextSize: 256, defaultSequences: 1, logger });
    assert.deepEqual(models.map((m) => m.id).sort(), ["llama-2-tiny-random", "stories260K"]);
    assert.equal(warnings().length, 1);
    assert.equal(warnings()[0]!.file, "missing.gguf");
  });

  test("an empty models.yaml is the same as none", async () => {
    await writeFile(join(dir, "models.yaml"), "# nothing yet\n");
    const { logger } = capturingLogger();
    const models = await scanModels({ modelsDir: dir, defaultContextSize: 256, defaultSequences: 1, logger });
    assert.equal(models.length, 2);
  });

  for (const [label, yaml, field, pattern] of [
    [
      "a non-integer context_size",
      "models:\n  - file: stories260K.gguf\n    context_size: big\n",
      "models.0.context_size",
      /number/,
    ],
    [
      "a zero sequences",
      "models:\n  - file: a.gguf\n  - file: stories260K.gguf\n    sequences: 0\n",
      "models.1.sequences",
      /1/,
    ],
    ["an unreadable vram", "models:\n  - file: stories260K.gguf\n    vram: lots\n", "models.0.vram", /byte size/],
    ["an unknown key", "models:\n  - file: stories260K.gguf\n    contextsize: 512\n", "models.0", /contextsize/],
    [
      "a placement GPU that is not an index",
      "models:\n  - file: stories260K.gguf\n    placement:\n      gpus: [first]\n",
      "models.0.placement.gpus.0",
      /number/,
    ],
    [
      "an unknown placement key",
      "models:\n  - file: stories260K.gguf\n    placement:\n      gpu: [0]\n",
      "models.0.placement",
      /gpu/,
    ],
    ["a file that is not .gguf or .bin", "models:\n  - file: stories260K.txt\n", "models.0.file", /\.gguf/],
    ["a path outside the folder", "models:\n  - file: ../x.gguf\n", "models.0.file", /inside/],
    ["models that is not a list", "models: stories260K.gguf\n", "models", /array/],
    ["broken YAML", "models:\n  - file: [unclosed\n", null, /YAML/],
  ] as const) {
    test(`a bad models.yaml (${label}) is an error naming the file and the field`, async () => {
      await writeFile(join(dir, "models.yaml"), yaml);
      const { logger } = capturingLogger();
      await assert.rejects(
        scanModels({ modelsDir: dir, defaultContextSize: 256, defaultSequences: 1, logger }),
        (error: unknown) => {
          assert.ok(error instanceof ModelsFileError, String(error));
          assert.equal(error.file, join(dir, "models.yaml"));
          assert.equal(error.field, field);
          assert.ok(error.message.includes(join(dir, "models.yaml")), error.message);
          if (field !== null) assert.ok(error.message.includes(field), error.message);
          assert.match(error.message, pattern);
          return true;
        },
      );
    });
  }
});

describe("scanModels with broken files", () => {
  let dir: string;
  let remove: () => Promise<void>;
  before(async () => {
    ({ dir, remove } = await tempModelsDir("broken"));
    await linkSharedModels(dir);
    const stories = await readFile(join(sharedModelsDir(), "stories260K.gguf"));
    await writeFile(join(dir, "random-bytes.gguf"), randomBytes(64 * 1024));
    await writeFile(join(dir, "empty.gguf"), Buffer.alloc(0));
    await writeFile(join(dir, "truncated-weights.gguf"), stories.subarray(0, Math.floor(stories.length / 2)));
    await writeFile(join(dir, "truncated-header.gguf"), stories.subarray(0, 200));
    const wrongMagic = Buffer.from(stories);
    wrongMagic.write("GGML", 0, "ascii");
    await writeFile(join(dir, "wrong-magic.gguf"), wrongMagic);
    const hugeCounts = Buffer.alloc(64);
    hugeCounts.write("GGUF", 0, "ascii");
    hugeCounts.writeUInt32LE(3, 4);
    hugeCounts.writeBigUInt64LE(1n << 60n, 8);
    hugeCounts.writeBigUInt64LE(1n, 16);
    await writeFile(join(dir, "huge-counts.gguf"), hugeCounts);
    // Not model files at all: partial downloads and other names are ignored silently.
    await writeFile(join(dir, "downloading.gguf.part"), stories.subarray(0, 1000));
    await writeFile(join(dir, "README.txt"), "models go here\n");
    // A header-only synthetic file without its sparse tail looks truncated too.
    await writeSyntheticGguf(
      join(dir, "header-only.gguf"),
      { ...LLAMA2_7B, fileType: FileType.MOSTLY_Q4_K_M },
      { sparse: false },
    );
  });
  after(() => remove());

  test("each bad file is skipped with one warning naming it, and the good ones are returned", async () => {
    const { logger, warnings } = capturingLogger();
    const models = await scanModels({ modelsDir: dir, defaultContextSize: 256, defaultSequences: 1, logger });
    assert.deepEqual(models.map((m) => m.id).sort(), ["llama-2-tiny-random", "stories260K"]);

    const bad = [
      "empty.gguf",
      "header-only.gguf",
      "huge-counts.gguf",
      "random-bytes.gguf",
      "truncated-header.gguf",
      "truncated-weights.gguf",
      "wrong-magic.gguf",
    ];
    assert.deepEqual(
      warnings()
        .map((w) => w.file)
        .sort(),
      bad,
    );
    for (const warning of warnings()) {
      assert.ok(warning.msg.includes(warning.file!), warning.msg);
      assert.equal(typeof warning.reason, "string");
    }
    const truncated = warnings().find((w) => w.file === "truncated-weights.gguf")!;
    assert.match(truncated.msg, /truncated/);
  });

  test("a bad file that models.yaml lists twice still gives one warning", async () => {
    await writeFile(
      join(dir, "models.yaml"),
      "models:\n  - file: random-bytes.gguf\n    id: a\n  - file: random-bytes.gguf\n    id: b\n",
    );
    try {
      const { logger, warnings } = capturingLogger();
      const models = await scanModels({ modelsDir: dir, defaultContextSize: 256, defaultSequences: 1, logger });
      assert.equal(models.length, 2);
      assert.equal(warnings().filter((w) => w.file === "random-bytes.gguf").length, 1);
    } finally {
      await unlink(join(dir, "models.yaml"));
    }
  });
});
