import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { sharedModelsDir } from "../../../../test/support/models.js";
import {
  estimateWhisperMemory,
  inspectWhisper,
  InvalidWhisperModelError,
  type WhisperHparams,
} from "./inspect-whisper.js";
import { scanModels } from "./scan-models.js";
import { capturingLogger, tempModelsDir } from "./test-support/fixtures.js";

const testModel = (name = "for-tests-ggml-tiny.en.bin") => join(sharedModelsDir(), "whisper", name);

/** Whisper's published shapes (openai/whisper `_MODELS`' dims). */
const TINY: WhisperHparams = {
  nVocab: 51_864,
  nAudioCtx: 1500,
  nAudioState: 384,
  nAudioHead: 6,
  nAudioLayer: 4,
  nTextCtx: 448,
  nTextState: 384,
  nTextHead: 6,
  nTextLayer: 4,
  nMels: 80,
  ftype: 1,
};
const LARGE: WhisperHparams = {
  ...TINY,
  nVocab: 51_866,
  nAudioState: 1280,
  nAudioHead: 20,
  nAudioLayer: 32,
  nTextState: 1280,
  nTextHead: 20,
  nTextLayer: 32,
  nMels: 128,
};

describe("inspectWhisper on whisper.cpp's test models", () => {
  test("reads tiny.en's hyper-parameters, vocabulary and an estimate near whisper.cpp's 273 MB", async () => {
    const summary = await inspectWhisper(testModel());
    assert.deepEqual(summary.hparams, TINY);
    assert.equal(summary.multilingual, false);
    assert.equal(summary.fileSizeBytes, 586_836);
    // tiny has 39M parameters (whisper's model card); the shapes count 37.8M (no tied duplicates).
    assert.ok(summary.parameters > 37_000_000 && summary.parameters < 40_000_000, String(summary.parameters));
    assert.ok(summary.memoryBytes > 200e6 && summary.memoryBytes < 300e6, String(summary.memoryBytes));
  });

  test("the multilingual tiny has 51,865 tokens and is multilingual", async () => {
    const summary = await inspectWhisper(testModel("for-tests-ggml-tiny.bin"));
    assert.equal(summary.hparams.nVocab, 51_865);
    assert.equal(summary.multilingual, true);
  });

  test("large's estimate is near whisper.cpp's 3.9 GB, and quantized weights need less", () => {
    const f16 = estimateWhisperMemory(LARGE);
    assert.ok(f16 > 3.3e9 && f16 < 4.3e9, String(f16));
    const q5 = estimateWhisperMemory({ ...LARGE, ftype: 9 });
    assert.ok(q5 < f16 * 0.6, `${q5} vs ${f16}`);
  });
});

describe("bad .bin files", () => {
  let dir: string;
  let remove: () => Promise<void>;
  before(async () => {
    ({ dir, remove } = await tempModelsDir("whisper"));
  });
  after(async () => {
    await remove();
  });

  const cases: [string, (model: Buffer) => Buffer, RegExp][] = [
    ["a GGUF renamed .bin", () => Buffer.from("GGUF\x03\x00\x00\x00" + "\x00".repeat(64), "latin1"), /bad magic/],
    ["random bytes", () => Buffer.alloc(4096, 7), /bad magic/],
    ["0 bytes", () => Buffer.alloc(0), /bad magic/],
    ["cut in the hyper-parameters", (model) => model.subarray(0, 20), /truncated in the hyper-parameters/],
    ["cut in the vocabulary", (model) => model.subarray(0, 200_000), /truncated in the vocabulary/],
    [
      "a zero layer count",
      (model) => {
        const copy = Buffer.from(model);
        copy.writeInt32LE(0, 4 + 4 * 4);
        return copy;
      },
      /nAudioLayer is 0/,
    ],
  ];
  for (const [label, make, reason] of cases) {
    test(`${label}: InvalidWhisperModelError with the reason`, async () => {
      const path = join(dir, `${label.replace(/\W+/g, "-")}.bin`);
      await writeFile(path, make(await readFile(testModel())));
      await assert.rejects(inspectWhisper(path), (error: unknown) => {
        assert.ok(error instanceof InvalidWhisperModelError, String(error));
        assert.match(error.reason, reason);
        return true;
      });
    });
  }

  test("scanModels lists the good .bin models (folder and whisper/) as kind whisper and skips a bad one with one warning", async () => {
    const { dir: models, remove: drop } = await tempModelsDir("whisper-scan");
    try {
      await mkdir(join(models, "whisper"));
      await symlink(testModel(), join(models, "whisper", "for-tests-ggml-tiny.en.bin"));
      await copyFile(testModel("for-tests-ggml-tiny.bin"), join(models, "tiny-multi.bin"));
      await writeFile(join(models, "broken.bin"), Buffer.alloc(100, 1));
      await writeFile(
        join(models, "models.yaml"),
        "models:\n  - file: tiny-multi.bin\n    id: whisper-tiny\n    aliases: [whisper-1]\n",
      );
      const { logger, warnings } = capturingLogger();
      const catalog = await scanModels({ modelsDir: models, logger });
      assert.deepEqual(
        catalog.map((m) => [m.id, m.kind, m.file]),
        [
          ["whisper-tiny", "whisper", "tiny-multi.bin"],
          ["for-tests-ggml-tiny.en", "whisper", "whisper/for-tests-ggml-tiny.en.bin"],
        ],
      );
      const tiny = catalog[0]!;
      assert.deepEqual(tiny.aliases, ["whisper-1"]);
      assert.equal(tiny.architecture, "whisper");
      assert.equal(tiny.sequences, 1);
      assert.equal(tiny.context_size, 448);
      assert.equal(tiny.requirement_bytes, tiny.estimated_vram_bytes);
      assert.ok(tiny.requirement_bytes > 200e6);
      const warned = warnings();
      assert.equal(warned.length, 1);
      assert.equal(warned[0]!.file, "broken.bin");
      assert.match(warned[0]!.msg, /not a usable whisper\.cpp model/);
    } finally {
      await drop();
    }
  });
});
