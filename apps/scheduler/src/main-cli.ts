#!/usr/bin/env node
// The scheduler process: `node apps/scheduler/dist/main-cli.js`.
import { main } from "./main.js";

main().catch((error: unknown) => {
  process.stderr.write(
    `corral scheduler: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
