/** `npm run bench [-- benchmark… --quick --runs N --profile --out FILE]`: see bench/lib/runner.ts. */
import { main } from "./lib/runner.js";

process.exitCode = await main(process.argv.slice(2));
