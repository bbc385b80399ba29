#!/usr/bin/env bash
# startup.sh — what nncpp costs before it does any work: wall and CPU time of
#   `nncpp --version`,
#   `nncpp t` on a 1 MiB input's file damaged in its last record (refused by the container check),
#   `nncpp c -1` of a 20 KB input (LibTorch loaded, a small model built and trained),
# each the median of R runs (default 5), for one build or two side by side.
#
# Usage: bench/startup.sh [--nncpp PATH] [--baseline PATH] [--runs R] [FILE]
#
# FILE (default data/regress/paper1, repeated) gives the 1 MiB and 20 KB inputs.
# --baseline PATH measures a second binary the same way, runs interleaved, and checks that both
# write the same bytes for the 20 KB input. The 1 MiB file is compressed once, at -1, by --nncpp
# (about 20 s). Exits 1 if a result is not the expected one (status 5 for the damaged file,
# identical compressed bytes).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

NNCPP=$(default_nncpp)
BASELINE=""
RUNS=5
FILE="$REPO_DIR/data/regress/paper1"
while (($#)); do
  case $1 in
    --nncpp) NNCPP=${2:?}; shift ;;
    --baseline) BASELINE=${2:?}; shift ;;
    --runs) RUNS=${2:?}; shift ;;
    -h|--help) usage 0 ;;
    -*) die "unknown argument: $1 (see --help)" ;;
    *) FILE=$1 ;;
  esac
  shift
done
check_nncpp "$NNCPP"
[[ -z $BASELINE ]] || check_nncpp "$BASELINE"
require_gnu_time

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
while (($(stat -c %s "$work/big" 2>/dev/null || echo 0) < 1048576)); do cat "$FILE" >>"$work/big"; done
head -c 1048576 "$work/big" >"$work/in1m"
head -c 20000 "$work/big" >"$work/in20k"
info "compressing 1 MiB of $FILE at -1 (once)"
"$NNCPP" c -q -1 "$work/in1m" -o "$work/in1m.nncp"
# The last record's byte before the container check: only the container check can find it.
python3 - "$work/in1m.nncp" "$work/bad.nncp" <<'EOF'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
data[-3] ^= 0x20
open(sys.argv[2], "wb").write(data)
EOF

status=0
# run_once BIN CASE: runs one case once; appends "wall cpu" to $work/BINTAG.CASE.
run_once() {
  local bin=$1 tag=$2 case=$3 rc=0
  case $case in
    version) "$GNU_TIME" -f '%e %U %S' -o "$work/t" "$bin" --version >/dev/null || rc=$? ;;
    test_damaged)
      "$GNU_TIME" -f '%e %U %S' -o "$work/t" "$bin" t -q "$work/bad.nncp" 2>/dev/null || rc=$?
      [[ $rc == 5 ]] || { shout "$bin t on the damaged file exited $rc, expected 5"; status=1; }
      rc=0 ;;
    compress_20k)
      "$GNU_TIME" -f '%e %U %S' -o "$work/t" "$bin" c -q -f -1 "$work/in20k" -o "$work/$tag.nncp" || rc=$? ;;
  esac
  [[ $rc == 0 ]] || { shout "$bin $case exited $rc"; status=1; }
  tail -n 1 "$work/t" | awk '{ printf "%s %.3f\n", $1, $2 + $3 }' >>"$work/$tag.$case"
}

median() { sort -g | awk '{ a[NR] = $1 } END { printf "%.2f", a[int((NR + 1) / 2)] }'; }

cases=(version test_damaged compress_20k)
for ((i = 0; i < RUNS; i++)); do
  for case in "${cases[@]}"; do
    run_once "$NNCPP" new "$case"
    [[ -z $BASELINE ]] || run_once "$BASELINE" base "$case"
  done
done
if [[ -n $BASELINE ]] && ! cmp -s "$work/new.nncp" "$work/base.nncp"; then
  shout "the two builds wrote different bytes for the 20 KB input"
  status=1
fi

printf 'median of %s runs; wall / CPU (user + system) seconds; %s\n\n' "$RUNS" "$(cpu_model)"
if [[ -n $BASELINE ]]; then
  printf '| run | baseline wall | baseline CPU | this build wall | this build CPU |\n|---|---:|---:|---:|---:|\n'
else
  printf '| run | wall | CPU |\n|---|---:|---:|\n'
fi
for case in "${cases[@]}"; do
  row="| $case"
  tags=(new)
  [[ -z $BASELINE ]] || tags=(base new)
  for tag in "${tags[@]}"; do
    row+=" | $(cut -d' ' -f1 "$work/$tag.$case" | median) | $(cut -d' ' -f2 "$work/$tag.$case" | median)"
  done
  printf '%s |\n' "$row"
done
exit "$status"
