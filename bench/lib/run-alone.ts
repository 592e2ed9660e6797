import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * Lets a benchmark file run by itself: `node --import tsx bench/e2e-throughput.ts [--quick]`
 * runs the runner with only that benchmark. Does nothing when the file is imported.
 * Not awaited at the module's top level: the runner imports the module again, which must
 * have finished evaluating first.
 */
export function runAlone(moduleUrl: string, name: string): void {
  const entry = process.argv[1];
  if (!entry || realpathSync(entry) !== realpathSync(fileURLToPath(moduleUrl))) return;
  setImmediate(() => {
    import("./runner.js")
      .then(({ main }) => main([name, ...process.argv.slice(2)]))
      .then(
        (code) => {
          process.exitCode = code;
        },
        (error: unknown) => {
          console.error(error);
          process.exitCode = 1;
        },
      );
  });
}
