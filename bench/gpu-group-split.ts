/**
 * The check that a group slot really splits a model across its GPUs, for bench/gpu.sh on a
 * host with 2+ GPUs. Run it the way the worker runs a group slot: with
 * `CUDA_VISIBLE_DEVICES=0,1 CUDA_DEVICE_ORDER=PCI_BUS_ID` in its environment. It loads
 * the model with full offload (`gpuLayers: "max"`, as the engine does; node-llama-cpp
 * 3.21.1 passes no split mode, so llama.cpp splits whole layers across the visible
 * devices), generates a few tokens, and prints, as JSON, each visible GPU's memory in use
 * (nvidia-smi) before the load and with the model loaded. A model split across the group
 * shows memory taken on every GPU; use a model of a few GiB or more, since a tiny one
 * (stories260K) moves only the CUDA context.
 *
 * usage: CUDA_VISIBLE_DEVICES=0,1 node --import tsx bench/gpu-group-split.ts model.gguf
 * (the stand-in, test/support/fake-nvidia-smi.mjs, as `nvidia-smi` on PATH runs it on the CPU)
 */
import { execFileSync } from "node:child_process";
import { LlamaCompletion, LlamaLogLevel, getLlama } from "node-llama-cpp";

const modelPath = process.argv[2];
if (!modelPath) {
  console.error("usage: CUDA_VISIBLE_DEVICES=0,1 node --import tsx bench/gpu-group-split.ts model.gguf");
  process.exit(2);
}
const visible = (process.env.CUDA_VISIBLE_DEVICES ?? "").split(",").filter((entry) => entry.trim() !== "");

/** MiB in use per nvidia-smi index. */
function usedMib(): Map<string, number> {
  const out = execFileSync("nvidia-smi", ["--query-gpu=index,memory.used", "--format=csv,noheader,nounits"], {
    encoding: "utf8",
  });
  return new Map(
    out
      .trim()
      .split("\n")
      .map((line) => line.split(",").map((cell) => cell.trim()))
      .map(([index, used]) => [index!, Number(used)]),
  );
}

const before = usedMib();
const llama = await getLlama({ gpu: "auto", build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath, gpuLayers: "max" });
// With full offload the threads matter little; CORRAL_BENCH_THREADS as in the rest of gpu.sh.
const context = await model.createContext({ contextSize: 512, threads: Number(process.env.CORRAL_BENCH_THREADS ?? 1) });
const started = performance.now();
const completion = new LlamaCompletion({ contextSequence: context.getSequence() });
const text = await completion.generateCompletion("Once upon a time", { maxTokens: 64 });
const seconds = (performance.now() - started) / 1000;
const loaded = usedMib();
const gpus = (visible.length > 0 ? visible : [...before.keys()]).map((index) => ({
  index,
  used_before_mib: before.get(index) ?? null,
  used_loaded_mib: loaded.get(index) ?? null,
  delta_mib: (loaded.get(index) ?? 0) - (before.get(index) ?? 0),
}));
console.log(
  JSON.stringify(
    {
      model: modelPath,
      backend: llama.gpu === false ? "cpu" : llama.gpu,
      cuda_visible_devices: process.env.CUDA_VISIBLE_DEVICES ?? null,
      devices: await llama.getGpuDeviceNames(),
      model_size_bytes: model.size,
      gpu_layers: model.gpuLayers,
      gpus,
      /** GPUs that took 64 MiB or more for the model: 2+ means llama.cpp split it. */
      gpus_used: gpus.filter((gpu) => gpu.delta_mib >= 64).length,
      completion_chars: text.length,
      generate_seconds: Number(seconds.toFixed(3)),
    },
    null,
    2,
  ),
);
await context.dispose();
await model.dispose();
await llama.dispose();
