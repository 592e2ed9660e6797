/** A Corral worker process for the benchmarks: exactly `corral worker` (supervisor and forked slots), configured from the environment. */
import { main } from "@corral/worker";

// The bench runner went away (killed, timed out): stop like on SIGTERM rather than linger.
process.on("disconnect", () => process.kill(process.pid, "SIGTERM"));
await main(process.env);
