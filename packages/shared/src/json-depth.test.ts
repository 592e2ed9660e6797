import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { exceedsJsonDepth } from "./json-depth.js";

describe("exceedsJsonDepth", () => {
  test("counts levels of arrays and objects, without recursion", () => {
    assert.equal(exceedsJsonDepth("x", 0), false);
    assert.equal(exceedsJsonDepth({}, 0), true);
    assert.equal(exceedsJsonDepth({ a: [1] }, 2), false);
    assert.equal(exceedsJsonDepth({ a: [{}] }, 2), true);
    const deep = JSON.parse(`${"[".repeat(100_000)}${"]".repeat(100_000)}`) as unknown;
    assert.equal(exceedsJsonDepth(deep, 256), true);
  });
});
