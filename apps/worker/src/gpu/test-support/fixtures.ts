import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { nvidiaSmiFixturesDir } from "../../../../../test/support/models.js";

/** A real nvidia-smi capture from `../shared/fixtures/nvidia-smi`. */
export function realFixture(name: string): string {
  return readFileSync(resolve(nvidiaSmiFixturesDir(), name), "utf8");
}

/** The repo's synthetic nvidia-smi fixtures (test/fixtures/nvidia-smi). */
export const syntheticFixturesDir = fileURLToPath(new URL("../../../../../test/fixtures/nvidia-smi", import.meta.url));

export function syntheticFixture(name: string): string {
  return readFileSync(resolve(syntheticFixturesDir, name), "utf8");
}

/** The fake nvidia-smi script (test/support/fake-nvidia-smi.mjs). */
export const fakeNvidiaSmiPath = fileURLToPath(
  new URL("../../../../../test/support/fake-nvidia-smi.mjs", import.meta.url),
);

export const MIB = 1024 ** 2;
