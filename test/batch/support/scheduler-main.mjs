// Runs the scheduler's main() as `corral scheduler` does, configured by the environment.
// A file rather than `node -e`: node-llama-cpp forks process.execArgv to test its binary,
// and an `-e` script there would start a second scheduler instead of the test.
import { main } from "@corral/scheduler";

await main(process.env);
