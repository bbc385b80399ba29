#!/usr/bin/env bash
# Checks the golden files against the table in tests/golden/README.md, each run of nncpp in its own process:
#   good/X.nncp: `nncpp d` gives X byte for byte, `nncpp t` passes;
#   bad/*:      `nncpp d` exits with the table's status and leaves no output or temporary file behind; with
#               MEASURE (the golden_measure tool), it also does so within 300 MB of peak memory and 1 s
#               of CPU time beyond what `nncpp t good/empty.nncp` costs in the same run (the program's
#               start with LibTorch loaded, ~0.9 s of CPU here; a file the container check refuses does
#               not load LibTorch and costs ~15 ms), from the child's getrusage.
# Every `nncpp d` runs with --memlimit 8G, so the outcome of the large-model files does not depend on the
# machine. Every file in good/ and bad/ must be in the table, and every row's file must exist.
#
#   tests/golden/check_golden.sh NNCPP [GOLDEN_DIR [MEASURE]]
set -uo pipefail
nncpp=${1:?usage: check_golden.sh NNCPP [GOLDEN_DIR [MEASURE]]}
nncpp=$(cd "$(dirname "$nncpp")" && pwd)/$(basename "$nncpp")  # runs happen in a scratch folder
[[ -x $nncpp ]] || { echo "check_golden.sh: no nncpp at $nncpp" >&2; exit 1; }
dir=$(cd "${2:-$(dirname "$0")}" && pwd)
measure=${3:-}
[[ -z $measure || -x $measure ]] || { echo "check_golden.sh: no golden_measure at $measure" >&2; exit 1; }
extra_cpu_ms=1000
max_cpu_ms=""  # set below: the start-up cost with LibTorch loaded + extra_cpu_ms
# 300 MB; sanitizer builds pass a larger limit (tests/CMakeLists.txt): AddressSanitizer's shadow memory
# and quarantine take 384 MB for the tool with LibTorch loaded (bad/other-libtorch.nncp; 167 MB normally).
max_rss_kb=${GOLDEN_MAX_RSS_KB:-$((300 * 1000))}
work=$(mktemp -d "${TMPDIR:-/tmp}/nncpp-golden-XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0
checked=0
if [[ -n $measure ]]; then
  cost=$("$measure" "$nncpp" t -q "$dir/good/empty.nncp" 2>&1 >/dev/null | grep -o 'cpu_ms=[0-9]*' | tail -1)
  [[ -n $cost ]] || { echo "check_golden.sh: cannot measure the start-up on good/empty.nncp" >&2; exit 1; }
  max_cpu_ms=$((${cost#cpu_ms=} + extra_cpu_ms))
fi

fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}

# Rows of the README's table: | `good/text.txt.nncp` | 0 | how it was made |
declare -A listed
while IFS='|' read -r _ file status _; do
  file=${file//[\` ]/}
  status=${status// /}
  [[ $file == good/* || $file == bad/* ]] || continue
  listed[$file]=1
  checked=$((checked + 1))
  path=$dir/$file
  if [[ ! -f $path ]]; then
    fail "$file: listed in README.md but missing"
    continue
  fi
  rm -rf "${work:?}"/*
  start=$SECONDS
  runner=()
  [[ $file == bad/* && -n $measure ]] && runner=("$measure")
  (cd "$work" && "${runner[@]}" "$nncpp" d -q --memlimit 8G "$path" -o out 2>"$work.err")
  code=$?
  seconds=$((SECONDS - start))
  cost=""
  if [[ ${#runner[@]} -gt 0 ]]; then
    cost=$(grep -o 'cpu_ms=[0-9]* max_rss_kb=[0-9]*' "$work.err" | tail -1)
    cpu_ms=${cost#cpu_ms=}
    cpu_ms=${cpu_ms%% *}
    rss_kb=${cost##*max_rss_kb=}
  fi
  if [[ $code != "$status" ]]; then
    fail "$file: nncpp d exited with $code, expected $status: $(head -c 300 "$work.err")"
  elif [[ $file == good/* ]]; then
    if ! (cd "$work" && "$nncpp" t -q "$path"); then
      fail "$file: nncpp t failed"
    elif ! cmp -s "$work/out" "${path%.nncp}"; then
      fail "$file: does not decode to ${file%.nncp}"
    else
      echo "ok   $file: decodes to ${file%.nncp} (${seconds} s)"
    fi
  elif left=$(find "$work" -mindepth 1 -printf '%f ') && [[ -n $left ]]; then
    fail "$file: left ${left}behind"
  elif [[ -n $cost ]] && ((cpu_ms >= max_cpu_ms || rss_kb >= max_rss_kb)); then
    fail "$file: rejected, but at a cost of $cost (limits: ${max_cpu_ms} ms CPU, start-up included, ${max_rss_kb} KB)"
  else
    echo "ok   $file: exit $code, no output (${seconds} s${cost:+, $cost})"
  fi
done <"$dir/README.md"
rm -f "$work.err"

for path in "$dir"/good/*.nncp "$dir"/bad/*; do
  file=${path#"$dir"/}
  [[ -n ${listed[$file]:-} ]] || fail "$file: not described in README.md"
done
((checked > 0)) || fail "no golden files listed in $dir/README.md"

if ((failures > 0)); then
  echo "$failures of $checked golden files failed. If the nncpp version or the coded bytes changed on purpose"
  echo "(LSTM numerics, coder, tokenizer, format), regenerate them: tests/golden/make_golden.sh BUILD_DIR"
  exit 1
fi
echo "all $checked golden files ok"
