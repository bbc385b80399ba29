#!/usr/bin/env bash
# threads.sh — does -T 2 cost anything when another CPU-bound job shares the machine?
#
# Usage: bench/threads.sh [--nncpp PATH] [--bytes N] [--runs R] [FILE]
#
# Compresses the first N bytes (default 20000) of FILE (default
# data/regress/paper1) at -1 with -T 1 and -T 2, each R times (default 3),
# while one busy loop holds a core (another CPU-bound job on a shared
# machine), and once more with -T 2 and OMP_WAIT_POLICY=active (OpenMP's
# spinning wait, which nncpp avoids by setting OMP_WAIT_POLICY=passive before
# LibTorch loads). Every file is decompressed in a separate process and
# compared. Prints the median wall time of each case and the ratio
# -T 2 / -T 1; exits 1 if that ratio (passive wait, the default) is above 1.3
# or a round trip fails.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

NNCPP=$(default_nncpp)
BYTES=20000
RUNS=3
FILE="$REPO_DIR/data/regress/paper1"
while (($#)); do
  case $1 in
    --nncpp) NNCPP=${2:?}; shift ;;
    --bytes) BYTES=${2:?}; shift ;;
    --runs)  RUNS=${2:?}; shift ;;
    -h|--help) usage 0 ;;
    -*) die "unknown argument: $1 (see --help)" ;;
    *) FILE=$1 ;;
  esac
  shift
done
check_nncpp "$NNCPP"

work=$(mktemp -d)
busy=
cleanup() {
  [[ -n $busy ]] && kill "$busy" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
head -c "$BYTES" "$FILE" >"$work/in"

# The other job: one shell loop that never sleeps.
bash -c 'while :; do :; done' &
busy=$!

# median_seconds NAME ENV... -- ARGS...: runs `env ENV nncpp c ARGS` RUNS times, prints the median.
median_seconds() {
  local name=$1 envs=() times=() i start
  shift
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  for ((i = 0; i < RUNS; i++)); do
    start=$(now)
    env "${envs[@]}" "$NNCPP" c -q -f -1 "$@" "$work/in" -o "$work/$name.nncp"
    times+=("$(fcalc "$(now) - $start")")
  done
  printf '%s\n' "${times[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

t1=$(median_seconds t1 OMP_WAIT_POLICY=passive -- -T 1)
t2=$(median_seconds t2 OMP_WAIT_POLICY=passive -- -T 2)
t2_spin=$(median_seconds t2spin OMP_WAIT_POLICY=active -- -T 2)

status=0
for name in t1 t2 t2spin; do
  "$NNCPP" d -q -f "$work/$name.nncp" -o "$work/$name.out"
  cmp -s "$work/in" "$work/$name.out" || { shout "round trip of $name differs"; status=1; }
done
cmp -s "$work/t2.nncp" "$work/t2spin.nncp" || { shout "the wait policy changed the bytes"; status=1; }

ratio=$(fcalc "$t2 / $t1")
printf 'input: %s bytes of %s, -1, one busy loop beside, median of %s runs\n' "$BYTES" "$FILE" "$RUNS"
printf '%-34s %8s s\n' "-T 1" "$t1" "-T 2 (passive wait, the default)" "$t2" \
  "-T 2, OMP_WAIT_POLICY=active" "$t2_spin"
printf 'ratio -T 2 / -T 1: %s (target <= 1.3); spinning: %s\n' "$ratio" "$(fcalc "$t2_spin / $t1")"
awk -v r="$ratio" 'BEGIN { exit !(r <= 1.3) }' || status=1
exit "$status"
