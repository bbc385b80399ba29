#!/usr/bin/env bash
# GPU benchmark: builds nncpp for CUDA (bench/gpu_env.sh), then for every FILE and every configuration
# compresses on cuda, decompresses in a separate process, checks the bytes and prints one row:
# config, file, bpb, symbols/s, KB/s both ways, peak GPU memory and mean GPU utilisation while compressing
# (sampled by nvidia-smi every 0.1 s: the share of time a kernel was running, i.e. kernels vs host).
#
#   bench/gpu_bench.sh FILE... -- NAME='FLAGS' [NAME='FLAGS'...]
#   e.g. bench/gpu_bench.sh enwiki.xml -- lstm5='-5' tf='--model transformer --streams 128'
set -euo pipefail
cd "$(dirname "$0")/.."
files=()
while [[ $# -gt 0 && $1 != -- ]]; do files+=("$1"); shift; done
shift || true
source bench/gpu_env.sh
nvidia-smi -L
work=$(mktemp -d)
printf '%-12s %-18s %8s %10s %8s %8s %9s %6s\n' config file bpb symbols/s c_KB/s d_KB/s gpu_MiB util%
for config in "$@"; do
  name=${config%%=*}
  flags=${config#*=}
  for file in "${files[@]}"; do
    f=$work/$name
    gpu_watch_start "$f.smi"
    # shellcheck disable=SC2086
    $nncpp c -q -f "$file" "$f.nncp" --device cuda $flags --stats-json "$f.c.json"
    gpu_watch_stop
    $nncpp d -q -f "$f.nncp" "$f.out" --stats-json "$f.d.json"
    cmp "$file" "$f.out"
    # shellcheck disable=SC2046
    python3 - "$f" "$name" "$(basename "$file")" $(gpu_watch_summary "$f.smi") <<'PY'
import json, sys
f, name, file, mem, util = sys.argv[1:]
mem, util = int(mem), float(util)
c = json.load(open(f + ".c.json")); d = json.load(open(f + ".d.json"))
print("%-12s %-18s %8.4f %10.0f %8.1f %8.1f %9d %6.0f" % (name, file[:18], c["bpb"], c["symbols"] / c["seconds"],
      c["kBps"], d["kBps"], mem, util))
PY
    rm -f "$f.out"
  done
done
