import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The built console (apps/console/dist), which `npm test` builds first (`pretest`). */
export const CONSOLE_DIST = fileURLToPath(new URL("../../apps/console/dist/", import.meta.url));

/** Throws, saying how to build it, when the console was not built. */
export function builtConsole(): string {
  if (!existsSync(`${CONSOLE_DIST}index.html`)) {
    throw new Error("the console is not built: run `npm run build` (or `npm run build -w @corral/console`) first");
  }
  return CONSOLE_DIST;
}
