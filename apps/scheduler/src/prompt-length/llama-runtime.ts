import { LlamaLogLevel, getLlama, type Llama } from "node-llama-cpp";

/** Receives llama.cpp's log lines (already split into lines, without the newline). */
export type LlamaLogSink = (level: LlamaLogLevel, message: string) => void;

interface Runtime {
  llama: Promise<Llama>;
  sinks: Set<LlamaLogSink>;
}

/**
 * The process's CPU llama.cpp runtime, shared with the worker's engines when both run in
 * one process (tests, `corral up`). It must stay ONE `Llama` per process: node-llama-cpp
 * 3.21 sets the addon's single logger in each new `Llama` and releases the previous one,
 * after which llama.cpp's log reaches no JS logger, and the worker reads that log to tell
 * out-of-memory from a bad file. Same registry and shape as the worker's
 * `apps/worker/src/engine/llama-runtime.ts` (keep the two in step): whichever side comes
 * first creates it with a logger that fans out to every sink.
 */
const runtimes: Map<string, Runtime> = ((globalThis as Record<symbol, unknown>)[Symbol.for("corral.llama-runtimes")] ??=
  new Map<string, Runtime>()) as Map<string, Runtime>;

export interface LlamaLease {
  llama: Llama;
  /** Stops this user's log sink; the runtime itself stays for the process. */
  release(): void;
}

/** The CPU runtime (`gpu: false`, prebuilt binaries only), created on first use. */
export async function acquireCpuLlama(sink: LlamaLogSink): Promise<LlamaLease> {
  const key = "false";
  let runtime = runtimes.get(key);
  if (!runtime) {
    const sinks = new Set<LlamaLogSink>();
    const created: Runtime = {
      sinks,
      llama: getLlama({
        gpu: false,
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
  const sinks = runtime.sinks;
  sinks.add(sink);
  return { llama, release: () => sinks.delete(sink) };
}
