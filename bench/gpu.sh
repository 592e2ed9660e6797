#!/usr/bin/env bash
# On a machine with an NVIDIA GPU, captures in bench/results/gpu/<time>/:
#   nvidia-smi.txt / nvidia-smi.csv   the GPUs as nvidia-smi reports them (before and after the run)
#   backend.json                       the backend node-llama-cpp picks (getLlama({gpu: "auto", build: "never"}),
#                                      as a Corral GPU slot asks), its devices and VRAM
#   e2e.json                           end-to-end tokens/s for one GGUF: direct node-llama-cpp with full offload
#                                      against Corral (HTTP submit, lane, one GPU slot on GPU 0, long poll)
#
# usage: bench/gpu.sh [model.gguf]
#   model.gguf               default: stories260K.gguf in CORRAL_MODELS_DIR (or ../shared/models)
#   RUNS=2                   measured runs per side (median reported), after a warm-up
#   CORRAL_BENCH_JOBS=300    jobs per run (64 tokens each); lower it for a large model
#   CORRAL_BENCH_THREADS=4   llama.cpp threads, the same for both sides
#   TIMEOUT=540              seconds the benchmark may take before it is stopped
# Needs `npm ci` done and redis-server on PATH. Builds the project first.
set -euo pipefail
cd "$(dirname "$0")/.."

model="${1:-${CORRAL_BENCH_MODEL:-}}"
out="bench/results/gpu/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
echo "gpu.sh: results in $out"

smi() {
  nvidia-smi > "$out/nvidia-smi$1.txt" 2>&1 || echo "nvidia-smi failed (exit $?)" >> "$out/nvidia-smi$1.txt"
  nvidia-smi --query-gpu=index,name,uuid,driver_version,memory.total,memory.used,memory.free,utilization.gpu,temperature.gpu,power.draw \
    --format=csv > "$out/nvidia-smi$1.csv" 2>&1 || true
}
smi ""
cat "$out/nvidia-smi.csv"

npx tsc -b
node --import tsx bench/gpu-backend.ts > "$out/backend.json"
echo "backend: $(node -e 'const b=require(process.argv[1]);console.log(b.backend, JSON.stringify(b.devices))' "$PWD/$out/backend.json")"

export CORRAL_BENCH_GPU=1
export CORRAL_BENCH_THREADS="${CORRAL_BENCH_THREADS:-4}"
if [ -n "$model" ]; then export CORRAL_BENCH_MODEL="$model"; fi
status=0
timeout "${TIMEOUT:-540}" node --import tsx bench/run.ts e2e_throughput --runs "${RUNS:-2}" --out "$out/e2e.json" || status=$?
smi "-after"
echo "gpu.sh: done (exit $status); $out"
exit "$status"
