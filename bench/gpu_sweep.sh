#!/usr/bin/env bash
# GPU settings sweep: compress FILE on cuda with each configuration and print bpb, symbols/s and KB/s
# (compression only; bench/gpu_bench.sh does full round trips), and each phase's share of the time when the
# flags include --profile. Builds with bench/gpu_env.sh.
#   bench/gpu_sweep.sh FILE NAME='FLAGS' [NAME='FLAGS'...]
set -euo pipefail
cd "$(dirname "$0")/.."
file=$1
shift
source bench/gpu_env.sh
work=$(mktemp -d)
printf '%-14s %-18s %8s %10s %8s %7s %8s %5s\n' config file bpb symbols/s c_KB/s seconds gpu_MiB util%
for config in "$@"; do
  name=${config%%=*}
  flags=${config#*=}
  gpu_watch_start "$work/$name.smi"
  # shellcheck disable=SC2086
  $nncpp c -q -f "$file" "$work/$name.nncp" --device cuda $flags --stats-json "$work/$name.json"
  gpu_watch_stop
  # shellcheck disable=SC2046
  python3 - "$work/$name" "$name" "$(basename "$file")" $(gpu_watch_summary "$work/$name.smi") <<'PY'
import json, sys
path, name, file, mem, util = sys.argv[1:]
mem, util = int(mem), float(util)
c = json.load(open(path + ".json"))
p = c.get("profile")
shares = "" if p is None else "  step %.0f%% code %.0f%% train %.0f%% retrain %.0f%%" % tuple(
    100 * p[k] / c["seconds"] for k in ("step", "code", "train", "retrain"))
print("%-14s %-18s %8.4f %10.0f %8.1f %7.1f %8d %5.0f%s" % (name, file[:18], c["bpb"], c["symbols"] / c["seconds"],
      c["kBps"], c["seconds"], mem, util, shares), flush=True)
PY
done
