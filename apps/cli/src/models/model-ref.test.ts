import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { PullError } from "./errors.js";
import { matchesQuant, parseModelRef, splitParts } from "./model-ref.js";

describe("model references", () => {
  test("hf: files, quantizations, revisions and URLs parse to what they name", () => {
    assert.deepEqual(parseModelRef("hf:ggml-org/models/tinyllamas/stories260K.gguf"), {
      kind: "hf-file",
      repo: "ggml-org/models",
      revision: "main",
      path: "tinyllamas/stories260K.gguf",
    });
    assert.deepEqual(parseModelRef("hf:Qwen/Qwen3-8B-GGUF:Q4_K_M"), {
      kind: "hf-quant",
      repo: "Qwen/Qwen3-8B-GGUF",
      revision: "main",
      quant: "Q4_K_M",
    });
    assert.deepEqual(parseModelRef("hf:a/b@v1.0/x.gguf"), {
      kind: "hf-file",
      repo: "a/b",
      revision: "v1.0",
      path: "x.gguf",
    });
    assert.deepEqual(parseModelRef("https://example.org/m/x.gguf"), {
      kind: "url",
      url: "https://example.org/m/x.gguf",
    });
  });

  test("a bad reference is a PullError bad_ref that says which forms exist", () => {
    for (const ref of [
      "ggml-org/tiny",
      "hf:onlyowner",
      "hf:a/b",
      "hf:a/b/readme.md",
      "hf:a/b/../x.gguf",
      "hf:a b/c/x.gguf",
      "hf:a/b:",
      "https://example.org/",
      "hf:a/b@/x.gguf",
    ]) {
      assert.throws(
        () => parseModelRef(ref),
        (error: unknown) =>
          error instanceof PullError && error.code === "bad_ref" && /hf:<owner>\/<repo>/.test(error.hint ?? ""),
        ref,
      );
    }
  });

  test("a quantization matches its own token only (Q4_K does not pick Q4_K_M)", () => {
    assert.ok(matchesQuant("model.Q4_K_M.gguf", "q4_k_m"));
    assert.ok(matchesQuant("model-Q4_K_M-00001-of-00002.gguf", "Q4_K_M"));
    assert.ok(matchesQuant("model_Q8_0.gguf", "Q8_0"));
    assert.ok(!matchesQuant("model.Q4_K_M.gguf", "Q4_K"));
    assert.ok(!matchesQuant("model.Q4_K_S.gguf", "Q4_K_M"));
    assert.ok(!matchesQuant("model.IQ4_XS.gguf", "Q4_XS"));
  });

  test("any part of a split GGUF names all its parts", () => {
    assert.deepEqual(splitParts("m-00002-of-00003.gguf"), [
      "m-00001-of-00003.gguf",
      "m-00002-of-00003.gguf",
      "m-00003-of-00003.gguf",
    ]);
    assert.deepEqual(splitParts("m.gguf"), ["m.gguf"]);
  });
});
