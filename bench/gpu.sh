#!/usr/bin/env bash
# On a machine with an NVIDIA GPU, captures in bench/results/gpu/<time>/:
#   nvidia-smi.txt / nvidia-smi.csv   the GPUs as nvidia-smi reports them (before and after the run)
#   backend.json                       the backend node-llama-cpp picks (getLlama({gpu: "auto", build: "never"}),
#                                      as a Corral GPU slot asks), its devices and VRAM
#   nvidia-smi-L.txt / topo.txt        `nvidia-smi -L` (MIG devices) and `nvidia-smi topo -m` (links between GPUs)
#   plan.json                          `corral worker --plan --json`: the slots and where each model would run
#   group-backend.json                 with 2+ GPUs: the backend seen with CUDA_VISIBLE_DEVICES=0,1 (a group slot's
#                                      view: both devices, their VRAM summed), the check that a group can split
#   group-split.json                   with 2+ GPUs: the model loaded as a group slot loads it (full offload,
#                                      CUDA_VISIBLE_DEVICES=0,1) and each GPU's memory before and with it loaded
#                                      (gpus_used ≥ 2: llama.cpp split it; use a model of a few GiB for that)
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

nvidia-smi -L > "$out/nvidia-smi-L.txt" 2>&1 || true
nvidia-smi topo -m > "$out/topo.txt" 2>&1 || true

npx tsc -b
CORRAL_SKIP_BUILD=1 node apps/cli/bin/corral.js worker --plan --json > "$out/plan.json" 2>"$out/plan.stderr" ||
  echo "corral worker --plan failed (exit $?); see plan.stderr"
node --import tsx bench/gpu-backend.ts > "$out/backend.json"
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
if [ "${gpus:-0}" -ge 2 ]; then
  CUDA_VISIBLE_DEVICES=0,1 CUDA_DEVICE_ORDER=PCI_BUS_ID node --import tsx bench/gpu-backend.ts > "$out/group-backend.json"
  echo "group 0+1: $(node -e 'const b=require(process.argv[1]);console.log(b.backend, JSON.stringify(b.devices), b.vram_total_bytes)' "$PWD/$out/group-backend.json")"
  split_model="${model:-${CORRAL_MODELS_DIR:-../shared/models}/stories260K.gguf}"
  CUDA_VISIBLE_DEVICES=0,1 CUDA_DEVICE_ORDER=PCI_BUS_ID node --import tsx bench/gpu-group-split.ts "$split_model" \
    > "$out/group-split.json" 2>"$out/group-split.stderr" || echo "group split check failed (exit $?); see group-split.stderr"
  echo "group split: $(node -e 'const b=require(process.argv[1]);console.log("GPUs used", b.gpus_used, JSON.stringify(b.gpus.map((g) => [g.index, g.delta_mib])))' "$PWD/$out/group-split.json" 2>/dev/null || echo none)"
fi
echo "backend: $(node -e 'const b=require(process.argv[1]);console.log(b.backend, JSON.stringify(b.devices))' "$PWD/$out/backend.json")"

export CORRAL_BENCH_GPU=1
export CORRAL_BENCH_THREADS="${CORRAL_BENCH_THREADS:-4}"
if [ -n "$model" ]; then export CORRAL_BENCH_MODEL="$model"; fi
status=0
timeout "${TIMEOUT:-540}" node --import tsx bench/run.ts e2e_throughput --runs "${RUNS:-2}" --out "$out/e2e.json" || status=$?
smi "-after"
echo "gpu.sh: done (exit $status); $out"
exit "$status"
