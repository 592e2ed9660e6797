/**
 * Prints, as JSON, the compute backend node-llama-cpp picks on this machine the way a
 * Corral GPU slot asks for it (`getLlama({ gpu: "auto", build: "never" })`), with its
 * devices and VRAM. Part of bench/gpu.sh.
 */
import { LlamaLogLevel, getLlama } from "node-llama-cpp";

const started = performance.now();
const llama = await getLlama({ gpu: "auto", build: "never", logLevel: LlamaLogLevel.error });
const vram = await llama.getVramState();
console.log(
  JSON.stringify(
    {
      backend: llama.gpu === false ? "cpu" : llama.gpu,
      supports_gpu_offloading: llama.supportsGpuOffloading,
      devices: await llama.getGpuDeviceNames(),
      vram_total_bytes: vram.total,
      vram_free_bytes: vram.free,
      build: llama.buildType,
      llama_cpp_release: llama.llamaCppRelease,
      cpu_math_cores: llama.cpuMathCores,
      get_llama_ms: Math.round(performance.now() - started),
      system_info: llama.systemInfo,
    },
    null,
    2,
  ),
);
await llama.dispose();
