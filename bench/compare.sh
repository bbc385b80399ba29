#!/usr/bin/env bash
# compare.sh — compare nncpp with standard compressors on a set of files.
#
# Usage: bench/compare.sh [--nncpp PATH] [--levels "LIST"] [--nncpp-args "ARGS"]
#                         [--out DIR] [--compressors "gzip bzip2 xz zstd brotli"]
#                         DIR_OR_FILES...
#
# For every file and every compressor/level it times compression and
# decompression separately (wall clock), records the peak RSS of each
# (GNU time %M), checks the round trip with cmp, and writes (OUT defaults to
# bench/out/compare; --levels takes 1-9 and/or "default", or "none" to skip
# nncpp; --nncpp-args are extra compression flags such as "-T 2")
#   OUT/results.csv  one row per file x compressor x level
#   OUT/results.md   per-file tables + a summary of totals per compressor
#   OUT/plot.png     bpb against compression speed (aggregate, log x)
#   OUT/raw.tsv      unrounded seconds and a status column (incl. failures)
#   OUT/logs/        stderr of every command that printed something
# A failed compression, decompression or round trip is reported loudly and
# makes the script exit 1 at the end (after writing the reports).
# See bench/README.md.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

# ---------------------------------------------------------------- options
NNCPP=$(default_nncpp)
NNCPP_GIVEN=0
LEVELS=default
NNCPP_ARGS=""
OUT_DIR="$BENCH_DIR/out/compare"
COMPRESSORS="gzip bzip2 xz zstd brotli"
INPUTS=()

parse_args() {
  while (($#)); do
    case $1 in
      --nncpp)       NNCPP=${2:?}; NNCPP_GIVEN=1; shift ;;
      --levels)      LEVELS=${2?}; shift ;;
      --nncpp-args)  NNCPP_ARGS=${2?}; shift ;;
      --out)         OUT_DIR=${2:?}; shift ;;
      --compressors) COMPRESSORS=${2?}; shift ;;
      -h|--help)     usage 0 ;;
      --)            shift; INPUTS+=("$@"); break ;;
      -*)            die "unknown option: $1 (see --help)" ;;
      *)             INPUTS+=("$1") ;;
    esac
    shift
  done
  ((${#INPUTS[@]})) || usage
  [[ $LEVELS == none ]] && LEVELS=""
  local l
  for l in $LEVELS; do
    [[ $l == default || $l =~ ^[1-9]$ ]] || die "bad nncpp level '$l' (use 1-9 or 'default')"
  done
  [[ $COMPRESSORS == none ]] && COMPRESSORS=""
  return 0
}

# ---------------------------------------------------------------- codecs
# Each run is described by a "codec spec" NAME:LEVEL, e.g. nncpp:default,
# nncpp:3, gzip:9. codec_argv sets CMD (argv) and CMD_STDIO (1: the command
# reads stdin and writes stdout; 0: it takes IN and OUT as arguments).

# Fixed settings of the reference compressors: "LEVEL|COMPRESS ARGS|DECOMPRESS ARGS"
declare -A REF_CODECS=(
  [gzip]="9|-9 -c|-d -c"
  [bzip2]="9|-9 -c|-d -c"
  [xz]="9e|-9e -c|-d -c"
  [zstd]="19|-19 --long -c|-d --long -c"
  [brotli]="11|-q 11 -c|-d -c"
)

codec_argv() {
  local name=$1 level=$2 mode=$3 in=$4 out=$5
  local -a extra
  read -r -a extra <<<"$NNCPP_ARGS"
  if [[ $name == nncpp ]]; then
    CMD_STDIO=0
    if [[ $mode == c ]]; then
      CMD=("$NNCPP" c "$in" "$out" -f -q)
      [[ $level != default ]] && CMD+=("-$level")
      CMD+=("${extra[@]}")
    else
      CMD=("$NNCPP" d "$in" "$out" -f -q)
    fi
    return 0
  fi
  local spec cargs dargs
  spec=${REF_CODECS[$name]}
  IFS='|' read -r _ cargs dargs <<<"$spec"
  CMD_STDIO=1
  if [[ $mode == c ]]; then read -r -a CMD <<<"$name $cargs"
  else                      read -r -a CMD <<<"$name $dargs"; fi
}

# The settings string shown in the reports.
codec_settings() {
  local name=$1 level=$2
  if [[ $name == nncpp ]]; then
    local s="-$level"
    [[ $level == default ]] && s="(default)"
    [[ -n $NNCPP_ARGS ]] && s+=" $NNCPP_ARGS"
    printf '%s\n' "$s"
  else
    local cargs
    IFS='|' read -r _ cargs _ <<<"${REF_CODECS[$name]}"
    printf '%s\n' "${cargs% -c}"
  fi
}

# Build the list of codec specs to run, skipping compressors not installed.
SPECS=()
select_codecs() {
  local l name level
  if [[ -n $LEVELS ]]; then
    if [[ ! -x $NNCPP ]]; then
      ((NNCPP_GIVEN)) || warn "use --levels none to run the other compressors only"
      check_nncpp "$NNCPP"
    fi
    for l in $LEVELS; do SPECS+=("nncpp:$l"); done
  fi
  for name in $COMPRESSORS; do
    [[ -n ${REF_CODECS[$name]+x} ]] || die "unknown compressor '$name' (known: ${!REF_CODECS[*]})"
    if ! command -v "$name" >/dev/null 2>&1; then
      warn "$name is not installed: skipped"
      continue
    fi
    IFS='|' read -r level _ <<<"${REF_CODECS[$name]}"
    SPECS+=("$name:$level")
  done
  ((${#SPECS[@]})) || die "nothing to run"
}

# ---------------------------------------------------------------- inputs
# FILES: paths; NAMES: the name shown in the reports (dir/relative or basename).
FILES=()
NAMES=()
collect_inputs() {
  local arg f base
  for arg in "${INPUTS[@]}"; do
    if [[ -d $arg ]]; then
      base=$(basename "$(cd "$arg" && pwd)")
      while IFS= read -r -d '' f; do
        add_input "$f" "$base/${f#"${arg%/}"/}"
      done < <(find "$arg" -type f -print0 | sort -z)
    elif [[ -f $arg ]]; then
      add_input "$arg" "$(basename "$arg")"
    else
      die "no such file or directory: $arg"
    fi
  done
  ((${#FILES[@]})) || die "no input files"
}
add_input() {
  if [[ ! -s $1 ]]; then warn "skipping empty file $1"; return 0; fi
  FILES+=("$1"); NAMES+=("$2")
}

# ---------------------------------------------------------------- running
FAILURES=0
RAW=""      # OUT/raw.tsv
WORK=""     # scratch folder for compressed / decompressed copies

# log_path NAME SPEC PHASE -> OUT/logs/<sanitised>.log
log_path() {
  local s="$1.${2/:/.}.$3"
  printf '%s/logs/%s.log\n' "$OUT_DIR" "${s//[^A-Za-z0-9._-]/_}"
}

# run_phase SPEC PHASE(c|d) IN OUT LOG: runs one measured step; sets MEAS_*.
run_phase() {
  local name=${1%%:*} level=${1#*:} phase=$2 in=$3 out=$4 log=$5
  codec_argv "$name" "$level" "$phase" "$in" "$out"
  if ((CMD_STDIO)); then measure "$in" "$out" "$log" "${CMD[@]}"
  else                   measure /dev/null /dev/null "$log" "${CMD[@]}"; fi
  [[ -s $log ]] || rm -f "$log"
}

# run_one FILE NAME SPEC: compress, decompress, verify, append a raw row.
run_one() {
  local file=$1 name=$2 spec=$3
  local comp="$WORK/c" dec="$WORK/d" status=ok
  local in_bytes out_bytes=0 cs=0 ds=0 cpk="" dpk=""
  local clog dlog
  in_bytes=$(file_size "$file")
  clog=$(log_path "$name" "$spec" c)
  dlog=$(log_path "$name" "$spec" d)
  rm -f "$comp" "$dec"

  run_phase "$spec" c "$file" "$comp" "$clog"
  cs=$MEAS_SECONDS cpk=$MEAS_PEAK_KB
  if ((MEAS_RC != 0)) || [[ ! -f $comp ]]; then
    status="compress failed (exit $MEAS_RC)"
  else
    out_bytes=$(file_size "$comp")
    run_phase "$spec" d "$comp" "$dec" "$dlog"
    ds=$MEAS_SECONDS dpk=$MEAS_PEAK_KB
    if ((MEAS_RC != 0)); then
      status="decompress failed (exit $MEAS_RC)"
    elif ! cmp -s "$file" "$dec"; then
      status="ROUND TRIP MISMATCH"
    fi
  fi

  if [[ $status != ok ]]; then
    FAILURES=$((FAILURES + 1))
    shout "$spec on $file: $status (logs: $clog $dlog)"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$name" "${spec%%:*}" "${spec#*:}" "$in_bytes" "$out_bytes" \
    "$cs" "$ds" "${cpk:-}" "${dpk:-}" "$status" >>"$RAW"
  printf '  %-22s %-8s %10s -> %10s  %s bpb  c %s KB/s  d %s KB/s  %s\n' \
    "$name" "$spec" "$in_bytes" "$out_bytes" "$(bpb "$in_bytes" "$out_bytes")" \
    "$(kbps "$in_bytes" "$cs")" "$(kbps "$in_bytes" "$ds")" "$status" >&2
}

run_all() {
  local i spec
  printf 'file\tcompressor\tlevel\tinput_bytes\toutput_bytes\tcompress_seconds\tdecompress_seconds\tcompress_peak_kB\tdecompress_peak_kB\tstatus\n' >"$RAW"
  for i in "${!FILES[@]}"; do
    info "[$((i + 1))/${#FILES[@]}] ${FILES[$i]}"
    for spec in "${SPECS[@]}"; do
      run_one "${FILES[$i]}" "${NAMES[$i]}" "$spec"
    done
  done
}

# ---------------------------------------------------------------- reports
write_csv() {
  awk -F'\t' -v OFS=, '
    function q(s) { if (s ~ /[",]/) { gsub(/"/, "\"\"", s); s = "\"" s "\"" } return s }
    function k(b, s) { return s > 0 ? sprintf("%.2f", b / 1000 / s) : "" }
    NR == 1 { print "file,compressor,level,input_bytes,output_bytes,bpb,compress_kBps,decompress_kBps,compress_peak_kB,decompress_peak_kB"; next }
    $10 == "ok" {
      print q($1), $2, $3, $4, $5, sprintf("%.4f", 8 * $5 / $4), k($4, $6), k($4, $7), $8, $9
    }' "$RAW" >"$OUT_DIR/results.csv"
}

# Aggregate per compressor+level over the successful rows, in run order:
# compressor level files in out bpb ckBps dkBps cpeak dpeak
summary_tsv() {
  awk -F'\t' -v OFS='\t' '
    NR == 1 || $10 != "ok" { next }
    {
      key = $2 SUBSEP $3
      if (!(key in n)) order[++nk] = key
      n[key]++; ib[key] += $4; ob[key] += $5; cs[key] += $6; ds[key] += $7
      if ($8 + 0 > cp[key]) cp[key] = $8 + 0
      if ($9 + 0 > dp[key]) dp[key] = $9 + 0
    }
    END {
      for (i = 1; i <= nk; i++) {
        key = order[i]; split(key, p, SUBSEP)
        print p[1], p[2], n[key], ib[key], ob[key], sprintf("%.4f", 8 * ob[key] / ib[key]),
              sprintf("%.2f", cs[key] > 0 ? ib[key] / 1000 / cs[key] : 0),
              sprintf("%.2f", ds[key] > 0 ? ib[key] / 1000 / ds[key] : 0), cp[key], dp[key]
      }
    }' "$RAW"
}

# shellcheck disable=SC2016  # backticks in printf formats are markdown
tool_versions() {
  local name
  # The binary's version and commit, not its path: the report is committed (docs/bench/results.md).
  [[ -n $LEVELS ]] && printf -- '- nncpp: `%s`, git commit `%s`\n' "$(nncpp_version "$NNCPP")" "$(git_commit)"
  for name in $COMPRESSORS; do
    command -v "$name" >/dev/null 2>&1 || continue
    case $name in
      bzip2) printf -- '- bzip2: `%s`\n' "$(bzip2 --help 2>&1 | head -n 1)" ;;
      *)     printf -- '- %s: `%s`\n' "$name" "$("$name" --version 2>&1 | head -n 1)" ;;
    esac
  done
}

# shellcheck disable=SC2016  # backticks in printf formats are markdown
write_md() {
  local md="$OUT_DIR/results.md" name
  {
    printf '# Compression benchmark\n\n'
    printf -- '- date: %s\n' "$(iso_date)"
    printf -- '- machine: %s, nproc %s, %s %s\n' "$(cpu_model)" "$(nproc)" "$(uname -s)" "$(uname -r)"
    tool_versions
    printf -- '- KB/s = input bytes / 1000 / wall-clock seconds; peak RSS from GNU time (kB)\n'
    printf -- '- settings: '
    local spec sep=""
    for spec in "${SPECS[@]}"; do
      printf '%s%s `%s`' "$sep" "${spec%%:*}" "$(codec_settings "${spec%%:*}" "${spec#*:}")"; sep=", "
    done
    printf '\n\n'

    printf '## Summary (totals over %d file(s))\n\n' "${#FILES[@]}"
    printf '| compressor | level | files | input bytes | output bytes | bpb | compress KB/s | decompress KB/s | max compress peak kB | max decompress peak kB |\n'
    printf '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
    summary_tsv | awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }'
    printf '\n'

    if ((FAILURES)); then
      printf '## FAILURES\n\n| file | compressor | level | status |\n|---|---|---|---|\n'
      awk -F'\t' 'NR > 1 && $10 != "ok" { printf "| %s | %s | %s | **%s** |\n", $1, $2, $3, $10 }' "$RAW"
      printf '\n'
    fi

    for name in "${NAMES[@]}"; do
      printf '## %s (%s bytes)\n\n' "$name" "$(awk -F'\t' -v f="$name" '$1 == f { print $4; exit }' "$RAW")"
      printf '| compressor | level | output bytes | bpb | compress KB/s | decompress KB/s | compress peak kB | decompress peak kB |\n'
      printf '|---|---|---:|---:|---:|---:|---:|---:|\n'
      awk -F'\t' -v f="$name" '
        function k(b, s) { return s > 0 ? sprintf("%.2f", b / 1000 / s) : "-" }
        NR > 1 && $1 == f {
          if ($10 == "ok")
            printf "| %s | %s | %s | %.4f | %s | %s | %s | %s |\n", $2, $3, $5, 8 * $5 / $4, k($4, $6), k($4, $7), $8, $9
          else
            printf "| %s | %s | **%s** | | | | | |\n", $2, $3, $10
        }' "$RAW"
      printf '\n'
    done
  } >"$md"
}

write_plot() {
  if ! ensure_cmd gnuplot gnuplot-nox; then
    warn "gnuplot not available: $OUT_DIR/plot.png not written"
    return 0
  fi
  local dat="$OUT_DIR/plot.dat" comp level bpb_ ckbps
  # columns: KB/s, bpb, label, colour (nncpp highlighted), label y. Each label
  # goes above its point when the nearest other point (in plot coordinates:
  # log x, linear y) lies below it, else below, so that neighbours overlap less.
  while IFS=$'\t' read -r comp level _ _ _ bpb_ ckbps _; do
    printf '%s\t%s\t"%s %s"\t%s\n' "$ckbps" "$bpb_" "$comp" "$(codec_settings "$comp" "$level")" \
      "$([[ $comp == nncpp ]] && echo 0xd62728 || echo 0x1f77b4)"
  done < <(summary_tsv) | awk -F'\t' -v OFS='\t' '
    { line[NR] = $0; x[NR] = log($1); y[NR] = $2
      if (NR == 1 || x[NR] < xl) xl = x[NR]; if (NR == 1 || x[NR] > xh) xh = x[NR]
      if (NR == 1 || y[NR] < yl) yl = y[NR]; if (NR == 1 || y[NR] > yh) yh = y[NR] }
    END {
      xs = (xh > xl) ? xh - xl : 1; ys = (yh > yl) ? yh - yl : 1
      d = (yh > yl) ? 0.03 * (yh - yl) : 0.01
      for (i = 1; i <= NR; i++) {
        best = -1; up = 1
        for (j = 1; j <= NR; j++) {
          if (j == i) continue
          dist = ((x[i] - x[j]) / xs) ^ 2 + ((y[i] - y[j]) / ys) ^ 2
          if (best < 0 || dist < best) { best = dist; up = (y[j] <= y[i]) }
        }
        print line[i], y[i] + (up ? d : -d)
      }
    }' >"$dat"
  [[ -s $dat ]] || { warn "no successful runs: no plot"; return 0; }
  gnuplot <<EOF
set terminal pngcairo size 1000,700 font "sans,11"
set output "$OUT_DIR/plot.png"
set title "bits per byte vs compression speed (${#FILES[@]} file(s), aggregate)"
set xlabel "compression speed, KB/s (log scale)"
set ylabel "bits per byte (lower is better)"
set logscale x
set grid
set offsets graph 0.08, graph 0.2, graph 0.1, graph 0.1
plot "$dat" using 1:2:4 with points pt 7 ps 1.5 lc rgb variable notitle, \
     "$dat" using 1:5:3 with labels left offset char 1,0 notitle
EOF
}

# ---------------------------------------------------------------- main
main() {
  parse_args "$@"
  require_gnu_time
  select_codecs
  collect_inputs
  mkdir -p "$OUT_DIR/logs"
  RAW="$OUT_DIR/raw.tsv"
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/compare.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT

  info "${#FILES[@]} file(s), runs: ${SPECS[*]}"
  run_all
  write_csv
  write_md
  write_plot
  rmdir "$OUT_DIR/logs" 2>/dev/null || true
  info "wrote $OUT_DIR/results.csv $OUT_DIR/results.md $OUT_DIR/plot.png"

  if ((FAILURES)); then
    shout "$FAILURES run(s) failed — see the FAILURES section of $OUT_DIR/results.md"
    exit 1
  fi
}

main "$@"
