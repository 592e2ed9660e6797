import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isPlaceholder, readBytes, readMigMode, readNumber, readRatio, readText } from "./values.js";

describe("nvidia-smi value readers", () => {
  test("every placeholder spelling, bracketed (CSV) or bare (XML), and empty reads as null", () => {
    for (const raw of [
      "[N/A]",
      "[Not Supported]",
      "[Requested functionality has been deprecated]",
      "[Unknown Error]",
      "N/A",
      "Not Supported",
      "Requested functionality has been deprecated",
      "",
      "   ",
      undefined,
      null,
    ]) {
      assert.equal(isPlaceholder(raw), true, `${JSON.stringify(raw)} is a placeholder`);
      assert.equal(readText(raw), null);
      assert.equal(readNumber(raw), null);
      assert.equal(readBytes(raw), null);
      assert.equal(readRatio(raw), null);
    }
  });

  test("real values are not placeholders", () => {
    for (const raw of ["0", "0 %", "Disabled", "NVIDIA H100 80GB HBM3", "590.48.01"]) {
      assert.equal(isPlaceholder(raw), false, raw);
    }
    assert.equal(readText("  590.48.01 "), "590.48.01");
  });

  test("unit suffixes are stripped: MiB, W, %, MHz, C and none", () => {
    assert.equal(readNumber("81559 MiB"), 81559);
    assert.equal(readNumber("69.85 W"), 69.85);
    assert.equal(readNumber("7 %"), 7);
    assert.equal(readNumber("1980 MHz"), 1980);
    assert.equal(readNumber("13 C"), 13);
    assert.equal(readNumber("41"), 41);
    assert.equal(readNumber("7%"), 7);
  });

  test("text that is not a number reads as null, not NaN", () => {
    assert.equal(readNumber("Default"), null);
    assert.equal(readNumber("P0"), null);
    assert.equal(readBytes("lots"), undefined);
  });

  test("memory is MiB unless the value or header says otherwise", () => {
    assert.equal(readBytes("81559 MiB"), 81559 * 1024 ** 2);
    assert.equal(readBytes("81559"), 81559 * 1024 ** 2); // --format=csv,nounits, header [MiB]
    assert.equal(readBytes("80", "GiB"), 80 * 1024 ** 3);
    assert.equal(readBytes("512 KiB"), 512 * 1024);
    assert.equal(readBytes("0 MiB"), 0);
    assert.equal(readBytes("12 furlongs"), undefined);
  });

  test("utilization percent becomes a 0..1 ratio", () => {
    assert.equal(readRatio("0 %"), 0);
    assert.equal(readRatio("7 %"), 0.07);
    assert.equal(readRatio("100 %"), 1);
    assert.equal(readRatio("100"), 1);
  });

  test("MIG mode: Enabled, Disabled, otherwise unsupported", () => {
    assert.equal(readMigMode("Enabled"), "enabled");
    assert.equal(readMigMode("Disabled"), "disabled");
    assert.equal(readMigMode("[N/A]"), "unsupported");
    assert.equal(readMigMode("N/A"), "unsupported");
    assert.equal(readMigMode(undefined), "unsupported");
  });
});
