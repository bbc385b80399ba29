#!/usr/bin/env bash
# Learning curves on a GPU: compresses FILE (or its first --bytes N) with each LEVEL on cuda, verbose, and
# prints the bpb of every block (8 MB blocks at the GPU levels: bpb per 8 MB of input) side by side, then
# each level's total bpb and KB/s. Compression only; bench/gpu_bench.sh does round trips. Builds with
# bench/gpu_env.sh; each level's log is kept as ${OUT:-/tmp}/curve.LEVEL.log.
#   bench/gpu_curve.sh [--bytes N] FILE LEVEL...
#   e.g. bench/gpu_curve.sh --bytes 67108864 corpus.txt 10 12 13   (the first 64 MB of bench/corpus.sh's)
set -euo pipefail
cd "$(dirname "$0")/.."
bytes=
if [[ ${1:-} == --bytes ]]; then bytes=$2; shift 2; fi
file=${1:?usage: bench/gpu_curve.sh [--bytes N] FILE LEVEL...}
shift
[[ $# -gt 0 ]] || { echo "usage: bench/gpu_curve.sh [--bytes N] FILE LEVEL..." >&2; exit 2; }
# shellcheck source=bench/gpu_env.sh
source bench/gpu_env.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
input=$file
if [[ -n $bytes ]]; then
  input=$work/input
  head -c "$bytes" "$file" >"$input"
fi
for level in "$@"; do
  "$nncpp" c -f -v "$input" "$work/$level.nncp" --level "$level" --device cuda --stats-json "$work/$level.json" \
    2>"$out/curve.$level.log"
done
python3 - "$work" "$out" "$@" <<'PY'
import json, re, sys
work, out, levels = sys.argv[1], sys.argv[2], sys.argv[3:]
blocks = {}
for level in levels:
    for line in open("%s/curve.%s.log" % (out, level)):
        m = re.search(r"block (\d+) coded: (\d+) bytes.* = ([0-9.]+) bpb", line)
        if m:
            blocks.setdefault(int(m.group(1)), {})[level] = (int(m.group(2)), float(m.group(3)))
print("%-6s %10s" % ("block", "bytes") + "".join("%10s" % ("level " + l) for l in levels))
for b in sorted(blocks):
    size = max(v[0] for v in blocks[b].values())
    print("%-6d %10d" % (b, size) + "".join("%10s" % ("%.4f" % blocks[b][l][1] if l in blocks[b] else "-")
                                            for l in levels))
for level in levels:
    c = json.load(open("%s/%s.json" % (work, level)))
    print("level %s: %.4f bpb, %.1f KB/s, %d symbols/s" % (level, c["bpb"], c["kBps"], c["symbols"] / c["seconds"]))
PY
