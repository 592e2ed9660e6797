import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { ModelFileError } from "./errors.js";
import { modelFilePath } from "./model-file.js";

/** Issue 16: the catalog comes from Redis, so the worker checks that a model's file stays inside the models folder. */
describe("modelFilePath", () => {
  const dir = resolve("/srv/corral/models");

  test("a file in the folder or a subfolder resolves inside it", () => {
    assert.equal(modelFilePath(dir, "stories260K.gguf"), join(dir, "stories260K.gguf"));
    assert.equal(modelFilePath(dir, "llama/7b.gguf"), join(dir, "llama/7b.gguf"));
    assert.equal(modelFilePath(dir, "llama/../7b.gguf"), join(dir, "7b.gguf"));
    assert.equal(modelFilePath(`${dir}/`, join(dir, "a.gguf")), join(dir, "a.gguf"), "an absolute path inside is fine");
  });

  for (const file of [
    "../secrets.gguf",
    "../../etc/passwd",
    "llama/../../other/x.gguf",
    "/etc/passwd",
    "/srv/corral/models-other/x.gguf",
    "..",
    ".",
    "",
    "a\0b.gguf",
  ]) {
    test(`refuses ${JSON.stringify(file)}`, () => {
      assert.throws(
        () => modelFilePath(dir, file),
        (error: unknown) => error instanceof ModelFileError && error.code === "model_file_error",
      );
    });
  }
});
