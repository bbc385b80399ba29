#!/usr/bin/env bash
# Builds nncpp against the PyTorch installation's CUDA LibTorch on a GPU machine without internet or apt
# (CLI11/spdlog/fmt carried in .gpu-deps, made with scripts/gpu_deps.sh .gpu-deps), then
# runs build-gpu/gpu_step_check when it was built, round-trips a sample on cuda and cpu in separate processes
# and checks that a cuda file is refused on cpu.
# Usage: bench/gpu_check.sh [sample] [level...]   (prints a table; logs under ${OUT:-/tmp})
set -euo pipefail
cd "$(dirname "$0")/.."
sample=${1:-data/alice29.txt}
shift || true
levels=${*:-1 5}
source bench/gpu_env.sh
$nncpp -V
nvidia-smi -L || true
# The fused step kernels (built when nvcc was found) against the Torch ops (docs/testing.md)
if [[ -x build-gpu/gpu_step_check ]]; then build-gpu/gpu_step_check | tail -2; fi
work=$(mktemp -d)
printf '%-6s %-6s %10s %8s %10s %10s\n' device level bytes bpb c_KB/s d_KB/s
for device in cuda cpu; do
  for level in $levels; do
    f=$work/$device.$level
    $nncpp c "$sample" "$f.nncp" "-$level" --device "$device" --stats-json "$f.c.json" -q
    $nncpp d "$f.nncp" "$f.out" --stats-json "$f.d.json" -q
    cmp "$sample" "$f.out"
    python3 - "$f" "$device" "$level" <<'PY'
import json, sys
f, device, level = sys.argv[1:]
c = json.load(open(f + ".c.json")); d = json.load(open(f + ".d.json"))
print("%-6s %-6s %10d %8.4f %10.1f %10.1f" % (device, level, c["output_bytes"], c["bpb"], c["kBps"], d["kBps"]))
PY
  done
done
# A cuda file must be refused on the cpu (exit 6, incompatible) ... unless it is forced.
set +e
CUDA_VISIBLE_DEVICES= $nncpp d "$work/cuda.${levels%% *}.nncp" "$work/x" 2>"$out/cross.txt"; status=$?
set -e
echo "cuda file decoded without a GPU: exit $status ($(cat "$out/cross.txt"))"
$nncpp l "$work/cuda.${levels%% *}.nncp" | tail -12
