// Preloaded with NODE_OPTIONS=--import=<this file> into processes whose command line the
// bench cannot change (the worker's forked slots; node refuses --cpu-prof in NODE_OPTIONS).
// Profiles the main thread with the inspector and writes <pid>.cpuprofile into
// BENCH_CPU_PROFILE_DIR when the process exits.
import { mkdirSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { join } from "node:path";

const dir = process.env.BENCH_CPU_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: 1000 });
  session.post("Profiler.start");
  process.once("exit", () => {
    // The main thread's inspector session answers synchronously, so this works in "exit".
    session.post("Profiler.stop", (error, result) => {
      if (error) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `CPU.${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
