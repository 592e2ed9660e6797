import { LlamaLogLevel, getLlama, type Llama } from "node-llama-cpp";

/** Receives llama.cpp's log lines (already split into lines, without the newline). */
export type LlamaLogSink = (level: LlamaLogLevel, message: string) => void;

interface Runtime {
  llama: Promise<Llama>;
  sinks: Set<LlamaLogSink>;
}

/**
 * llama.cpp runtimes, one per `gpu` setting, shared by everything in the process that
 * runs llama.cpp: the worker's engines and the scheduler's prompt-length tokenizers.
 *
 * Why process-wide: the native addon holds ONE logger. node-llama-cpp 3.21 sets it in
 * each new `Llama` and releases the previous one, whose asynchronous finalizer then clears
 * the "logger set" flag, so from the second `getLlama()` on, llama.cpp writes straight to
 * stdout and no JS logger sees anything (addon `setLogger` in globals/addonLog.cpp). The
 * engine needs llama.cpp's error lines to tell out-of-memory from a bad file, so whoever
 * comes first creates the `Llama` with a logger that fans out to every lease's sink. The
 * runtime stays loaded until the process exits (node-llama-cpp disposes it on
 * `beforeExit`); users dispose their own models and contexts.
 *
 * The map lives on `globalThis` under a registered symbol so that every copy of this
 * module in the process shares it (a scheduler and a worker in one process: tests,
 * `corral up`): a second `Llama` would cut every engine off from llama.cpp's log.
 */
const runtimes: Map<string, Runtime> = ((globalThis as Record<symbol, unknown>)[Symbol.for("corral.llama-runtimes")] ??=
  new Map<string, Runtime>()) as Map<string, Runtime>;

export interface LlamaLease {
  llama: Llama;
  /** Stops this user's log sink; the runtime itself stays for the process. */
  release(): void;
}

/**
 * The runtime for `gpu` (`false`: the CPU; prebuilt binaries only), created on first use,
 * with `sink` receiving its log until the lease is released. `verbose` turns llama.cpp's
 * debug output on for the whole runtime.
 */
export async function acquireLlama(gpu: "auto" | false, sink: LlamaLogSink, verbose = false): Promise<LlamaLease> {
  const key = String(gpu);
  let runtime = runtimes.get(key);
  if (!runtime) {
    const sinks = new Set<LlamaLogSink>();
    const created: Runtime = {
      sinks,
      llama: getLlama({
        gpu,
        build: "never",
        logLevel: LlamaLogLevel.warn,
        logger: (level, message) => {
          for (const line of message.split("\n")) {
            if (line.trim() === "") continue;
            for (const target of sinks) target(level, line);
          }
        },
      }),
    };
    runtime = created;
    runtimes.set(key, created);
    void created.llama.catch(() => {
      if (runtimes.get(key) === created) runtimes.delete(key);
    });
  }
  const llama = await runtime.llama;
  // llama.cpp's info output is hundreds of lines per load: only ask for it when someone traces.
  if (verbose && llama.logLevel !== LlamaLogLevel.debug) llama.logLevel = LlamaLogLevel.debug;
  const sinks = runtime.sinks;
  sinks.add(sink);
  return { llama, release: () => sinks.delete(sink) };
}
