#!/usr/bin/env bash
# New-user demo: install, build, compress and decompress the bundled sample, print the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
sample=data/alice29.txt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
build/nncpp c "$sample" "$work/sample.nncp" --stats-json "$work/stats.json"
build/nncpp d "$work/sample.nncp" "$work/sample.out"
cmp "$sample" "$work/sample.out"
in=$(stat -c %s "$sample")
out=$(stat -c %s "$work/sample.nncp")
seconds=$(sed -E 's/.*"seconds":([0-9.e+-]+).*/\1/' "$work/stats.json")
awk -v i="$in" -v o="$out" -v s="$seconds" 'BEGIN {
  printf "%s: %d -> %d bytes, ratio %.3f, %.3f bits per byte, %.1f KB/s; round trip OK\n",
         "'"$sample"'", i, o, i / o, 8 * o / i, i / 1000 / s }'
