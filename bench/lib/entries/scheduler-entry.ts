/**
 * A scheduler process for the benchmarks: the real `startScheduler` configured from the
 * environment (as `corral scheduler` does), with the hello-world route mounted on its
 * server, plus a bare express app with the same route on another port of the process.
 * Tells the parent both URLs over IPC; stops on "stop", SIGTERM or when the parent goes
 * away (exiting normally, so `--cpu-prof` is written).
 */
import { pino } from "pino";
import { loadConfig, startScheduler } from "@corral/scheduler";
import { mountHello, startHelloServer } from "../hello-server.js";

const config = loadConfig(process.env);
const logger = pino({ name: "corral-scheduler", level: config.logLevel });
const scheduler = await startScheduler(config, { logger, shutdownGraceMs: 2000, extraRoutes: mountHello });
const hello = await startHelloServer(config.host);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  Promise.allSettled([scheduler.close(), hello.close()]).then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on("message", (message: { type?: string }) => {
  if (message.type === "stop") stop();
});
process.on("disconnect", stop);
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.send?.({ type: "ready", url: scheduler.url, helloUrl: hello.url });
