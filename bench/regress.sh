#!/usr/bin/env bash
# regress.sh — compressed-size regression check for CI.
#
# Usage: bench/regress.sh [--nncpp PATH] [--update]
#
# Compresses every file of data/regress/ (the files listed in
# data/regress/SHA256SUMS, which is checked first) with `nncpp c -1 -T 1`,
# decompresses it in a separate process, checks the round trip with cmp, and
# compares the compressed size with bench/regress_expected.tsv
# (file<TAB>level<TAB>bytes; lines starting with # are comments).
# Prints old size, new size and the change in percent for each file.
# Exit 1 if a round trip fails, a file grows by more than 0.2 %, a file has no
# entry in the record, or the record names a file that is not in the set.
#   --update  rewrite the record from this run (round trips must still pass).
# See bench/README.md for when to update the record.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

LEVEL=1            # the fastest level: keeps CI short
THREADS=1          # sizes are only reproducible for a fixed thread count
MAX_GROWTH_PCT=0.2
DATA_DIR="$REPO_DIR/data/regress"
RECORD="$BENCH_DIR/regress_expected.tsv"
NNCPP=$(default_nncpp)
UPDATE=0

parse_args() {
  while (($#)); do
    case $1 in
      --nncpp)   NNCPP=${2:?}; shift ;;
      --update)  UPDATE=1 ;;
      -h|--help) usage 0 ;;
      *)         die "unknown argument: $1 (see --help)" ;;
    esac
    shift
  done
}

# check_data: the set is what SHA256SUMS lists; the bytes must match it.
FILES=()
check_data() {
  [[ -f $DATA_DIR/SHA256SUMS ]] || die "missing $DATA_DIR/SHA256SUMS"
  if ! (cd "$DATA_DIR" && sha256sum --quiet -c SHA256SUMS >&2); then
    die "data/regress does not match its SHA256SUMS (line-ending conversion on checkout? see data/README.md)"
  fi
  mapfile -t FILES < <(awk '{ sub(/^\*/, "", $2); print $2 }' "$DATA_DIR/SHA256SUMS")
  ((${#FILES[@]})) || die "no files listed in $DATA_DIR/SHA256SUMS"
}

# expected_size FILE -> bytes from the record, or "" if absent.
expected_size() {
  [[ -f $RECORD ]] || return 0
  awk -F'\t' -v f="$1" -v l="$LEVEL" '!/^#/ && $1 == f && $2 == l { print $3; exit }' "$RECORD"
}

# roundtrip FILE WORK: compress + decompress + cmp. Sets NEW_SIZE, RT_STATUS,
# RT_SECONDS (compress + decompress).
roundtrip() {
  local src="$DATA_DIR/$1" comp="$2/c.nncp" dec="$2/d" log="$2/log"
  rm -f "$comp" "$dec"
  NEW_SIZE="" RT_STATUS=ok
  measure /dev/null /dev/null "$log" "$NNCPP" c "$src" "$comp" "-$LEVEL" -T "$THREADS" -f -q
  RT_SECONDS=$MEAS_SECONDS
  if ((MEAS_RC != 0)); then
    RT_STATUS="COMPRESS FAILED (exit $MEAS_RC)"; sed 's/^/    /' "$log" >&2; return 0
  fi
  NEW_SIZE=$(file_size "$comp")
  measure /dev/null /dev/null "$log" "$NNCPP" d "$comp" "$dec" -f -q
  RT_SECONDS=$(fcalc "$RT_SECONDS + $MEAS_SECONDS")
  if ((MEAS_RC != 0)); then
    RT_STATUS="DECOMPRESS FAILED (exit $MEAS_RC)"; sed 's/^/    /' "$log" >&2
  elif ! cmp -s "$src" "$dec"; then
    RT_STATUS="ROUND TRIP MISMATCH"
  fi
}

# verdict OLD NEW -> "change_pct<TAB>status" (status: ok, GREW, smaller, new)
verdict() {
  awk -v o="$1" -v n="$2" -v max="$MAX_GROWTH_PCT" 'BEGIN {
    if (o == "") { printf "-\tNOT IN RECORD\n"; exit }
    pct = (n - o) * 100 / o
    st = pct > max ? "GREW" : (pct < 0 ? "smaller" : "ok")
    printf "%+.3f%%\t%s\n", pct, st }'
}

write_record() {
  local tmp="$RECORD.tmp" i
  {
    printf '# Expected compressed sizes for bench/regress.sh: nncpp c FILE OUT -%s -T %s\n' "$LEVEL" "$THREADS"
    printf '# Valid for one thread count and CPU level; update with bench/regress.sh --update (see bench/README.md).\n'
    printf '# written by: %s; cpu: %s; %s\n' "$(nncpp_version "$NNCPP")" "$(cpu_model)" "$(iso_date)"
    printf '# file\tlevel\tbytes\n'
    for i in "${!FILES[@]}"; do
      printf '%s\t%s\t%s\n' "${FILES[$i]}" "$LEVEL" "${NEW_SIZES[$i]}"
    done
  } >"$tmp"
  mv "$tmp" "$RECORD"
  info "record rewritten: $RECORD"
}

# stale_entries: record rows (for this level) whose file is not in the set.
stale_entries() {
  [[ -f $RECORD ]] || return 0
  awk -F'\t' -v l="$LEVEL" 'NR == FNR { have[$0]; next }
    !/^#/ && NF >= 3 && $2 == l && !($1 in have) { print $1 }' \
    <(printf '%s\n' "${FILES[@]}") "$RECORD"
}

main() {
  parse_args "$@"
  require_gnu_time
  check_nncpp "$NNCPP"
  check_data
  [[ -f $RECORD || $UPDATE -eq 1 ]] || warn "no record yet ($RECORD): run with --update"

  local work i f old verdict_ pct st failures=0 rt_failures=0 total_old=0 total_new=0 t_total=0
  work=$(mktemp -d "${TMPDIR:-/tmp}/regress.XXXXXX")
  # shellcheck disable=SC2064  # expand now: $work is local
  trap "rm -rf '$work'" EXIT
  NEW_SIZES=()

  info "$(nncpp_version "$NNCPP"), level -$LEVEL, -T $THREADS, ${#FILES[@]} files"
  printf '%-14s %5s %10s %10s %9s %8s  %s\n' file level old new change seconds status
  for i in "${!FILES[@]}"; do
    f=${FILES[$i]}
    roundtrip "$f" "$work"
    NEW_SIZES[i]=$NEW_SIZE
    old=$(expected_size "$f")
    if [[ $RT_STATUS != ok ]]; then
      pct=- st=$RT_STATUS
      rt_failures=$((rt_failures + 1))
    else
      verdict_=$(verdict "$old" "$NEW_SIZE")
      pct=${verdict_%%$'\t'*} st=${verdict_#*$'\t'}
      total_new=$((total_new + NEW_SIZE))
      [[ -n $old ]] && total_old=$((total_old + old))
    fi
    case $st in ok|smaller) ;; *) failures=$((failures + 1)) ;; esac
    t_total=$(fcalc "$t_total + $RT_SECONDS")
    printf '%-14s %5s %10s %10s %9s %8.2f  %s\n' "$f" "-$LEVEL" "${old:--}" "${NEW_SIZE:--}" "$pct" "$RT_SECONDS" "$st"
  done
  printf '%-14s %5s %10s %10s %9s %8.2f\n' total "" "$total_old" "$total_new" "" "$t_total"

  if ((UPDATE)); then
    if ((rt_failures)); then
      shout "$rt_failures round trip(s) failed: record NOT updated"; exit 1
    fi
    write_record
    exit 0
  fi

  local stale
  stale=$(stale_entries)
  if [[ -n $stale ]]; then
    failures=$((failures + 1))
    printf '%s: record has entries for files not in data/regress: %s\n' "$PROG" "$(echo "$stale" | tr '\n' ' ')" >&2
  fi
  if ((failures)); then
    shout "$failures problem(s): round trip failure, growth > ${MAX_GROWTH_PCT}%, or record out of date (bench/README.md says when to run --update)"
    exit 1
  fi
  info "PASS"
}

main "$@"
