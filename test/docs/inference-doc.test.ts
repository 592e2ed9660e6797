import { readFileSync } from "node:fs";
import { test } from "node:test";
import assert from "node:assert/strict";
import { renderInferenceDoc } from "../../scripts/inference-doc.js";
import { sharedModelsDir } from "../support/models.js";

test("docs/how-inference-works.md holds the figures Corral's estimator and tokenizers give today (regenerate with scripts/inference-doc.ts)", async () => {
  const doc = readFileSync(new URL("../../docs/how-inference-works.md", import.meta.url), "utf8");
  assert.equal(doc, await renderInferenceDoc(sharedModelsDir()));
});
