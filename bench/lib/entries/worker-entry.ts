/** A Corral worker process for the benchmarks: exactly `corral worker` (supervisor and forked slots), configured from the environment. */
import { main } from "@corral/worker";

await main(process.env);
