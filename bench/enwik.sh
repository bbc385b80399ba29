#!/usr/bin/env bash
# enwik.sh — run nncpp on enwik8 / enwik9 (or a prefix) and log one JSON line.
#
# Usage: bench/enwik.sh [--level N] [--device cpu|cuda] [-T|--threads N]
#                       [--bytes N] [--nncpp PATH] [--file PATH]
#                       [--out FILE.jsonl] [enwik8|enwik9]
#
# Finds the file (--file, else ./enwik8 or ./enwik9; downloads and unzips
# http://mattmahoney.net/dc/NAME.zip when absent and the network works),
# checks its size and SHA-256 against the published values, optionally cuts
# a prefix of --bytes N, compresses it with --stats-json, decompresses it in
# a separate process, verifies with cmp, and appends ONE JSON line to --out
# (default bench/out/enwik.jsonl). A file given with --file that does not
# match the known size/hash (e.g. a stand-in sample) is used anyway, with a
# warning and "verified": false in the record; the default file must match.
# With --file and no data set name, any file is run (e.g. the corpus of
# bench/corpus.sh and its prefixes, --bytes N), recorded under its basename.
# --level takes 1-9 and the GPU levels 10-13 (with --device cuda).
# Scratch files go to $TMPDIR (default /tmp). See bench/README.md.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

# Published sizes and SHA-256 of the files in http://mattmahoney.net/dc/
# enwik8.zip / enwik9.zip (the unzipped files). The hashes agree across
# several independent public records.
declare -A KNOWN_SIZE=([enwik8]=100000000 [enwik9]=1000000000)
declare -A KNOWN_SHA256=(
  [enwik8]=2b49720ec4d78c3c9fabaee6e4179a5e997302b3a70029f30f2d582218c024a8
  [enwik9]=159b85351e5f76e60cbe32e04c677847a9ecba3adc79addab6f4c6c7aa3744bc
)
BASE_URL=http://mattmahoney.net/dc

NNCPP=$(default_nncpp)
LEVEL=""
DEVICE=""
THREADS=""
BYTES=""
FILE=""
FILE_GIVEN=0
OUT="$BENCH_DIR/out/enwik.jsonl"
DATASET=""

parse_args() {
  while (($#)); do
    case $1 in
      --level)      LEVEL=${2:?}; shift ;;
      --device)     DEVICE=${2:?}; shift ;;
      -T|--threads) THREADS=${2:?}; shift ;;
      --bytes)      BYTES=${2:?}; shift ;;
      --nncpp)      NNCPP=${2:?}; shift ;;
      --file)       FILE=${2:?}; FILE_GIVEN=1; shift ;;
      --out)        OUT=${2:?}; shift ;;
      -h|--help)    usage 0 ;;
      enwik8|enwik9) [[ -z $DATASET ]] || die "only one data set at a time"; DATASET=$1 ;;
      *)            die "unknown argument: $1 (see --help)" ;;
    esac
    shift
  done
  [[ -n $DATASET || -n $FILE ]] || usage
  [[ -z $LEVEL   || $LEVEL =~ ^([1-9]|1[0-3])$ ]] || die "--level must be 1-13"
  [[ -z $DEVICE  || $DEVICE =~ ^(cpu|cuda)$ ]]  || die "--device must be cpu or cuda"
  [[ -z $BYTES   || $BYTES =~ ^[1-9][0-9]*$ ]]  || die "--bytes must be a positive integer"
  [[ -z $THREADS || $THREADS =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer"
  return 0
}

# download NAME DEST: fetch NAME.zip and unzip NAME to DEST.
download() {
  local name=$1 dest=$2 url="$BASE_URL/$1.zip" tmp
  require_cmd curl curl
  require_cmd unzip unzip
  if ! curl -fsSI --connect-timeout 10 --max-time 30 "$url" >/dev/null 2>&1; then
    die "$dest not found and $url cannot be reached (no network?). Pass --file PATH."
  fi
  tmp=$(mktemp -d "$(dirname "$dest")/.$name.download.XXXXXX")
  info "downloading $url"
  curl -fL --retry 3 --connect-timeout 20 -o "$tmp/$name.zip" "$url" || { rm -rf "$tmp"; die "download failed"; }
  unzip -q "$tmp/$name.zip" "$name" -d "$tmp" || { rm -rf "$tmp"; die "unzip failed"; }
  mv "$tmp/$name" "$dest"
  rm -rf "$tmp"
}

# locate_file: sets FILE; downloads the default file if needed.
locate_file() {
  if [[ -n $FILE ]]; then
    [[ -f $FILE ]] || die "no such file: $FILE"
    return 0
  fi
  FILE="./$DATASET"
  [[ -f $FILE ]] || download "$DATASET" "$FILE"
}

# verify_file: sets VERIFIED (true/false) and FILE_SHA256. Dies on a mismatch
# of the default file; warns for one given with --file.
verify_file() {
  if [[ -z $DATASET ]]; then  # --file alone: no published size or hash to compare with
    DATASET=$(basename "$FILE")
    FILE_SHA256=$(sha256sum -- "$FILE" | cut -d' ' -f1)
    VERIFIED=false
    return 0
  fi
  local size want_size=${KNOWN_SIZE[$DATASET]} want_sha=${KNOWN_SHA256[$DATASET]} problem=""
  size=$(file_size "$FILE")
  info "computing SHA-256 of $FILE"
  FILE_SHA256=$(sha256sum -- "$FILE" | cut -d' ' -f1)
  if [[ $size != "$want_size" ]]; then
    problem="size $size, expected $want_size"
  elif [[ $FILE_SHA256 != "$want_sha" ]]; then
    problem="sha256 $FILE_SHA256, expected $want_sha"
  fi
  if [[ -z $problem ]]; then
    VERIFIED=true
    info "$FILE is $DATASET (size and SHA-256 match)"
  elif ((!FILE_GIVEN)); then
    die "$FILE is not the real $DATASET: $problem (delete it to download again)"
  else
    VERIFIED=false
    warn "$FILE is not the real $DATASET ($problem): running anyway, recorded as \"verified\": false"
  fi
}

# prepare_input WORK: sets INPUT (the whole file or a prefix of it in WORK).
prepare_input() {
  local size
  size=$(file_size "$FILE")
  INPUT=$FILE
  [[ -n $BYTES ]] || return 0
  if ((BYTES >= size)); then
    warn "--bytes $BYTES >= file size $size: using the whole file"
    return 0
  fi
  INPUT="$1/input"
  head -c "$BYTES" -- "$FILE" >"$INPUT"
}

compress_args() {
  local -a a=()
  if [[ -n $LEVEL ]]; then
    if ((LEVEL >= 10)); then a+=(--level "$LEVEL"); else a+=("-$LEVEL"); fi
  fi
  [[ -n $DEVICE ]]  && a+=(--device "$DEVICE")
  [[ -n $THREADS ]] && a+=(-T "$THREADS")
  if ((${#a[@]})); then printf '%s\n' "${a[@]}"; fi
}

main() {
  parse_args "$@"
  require_gnu_time
  require_cmd jq jq
  check_nncpp "$NNCPP"
  locate_file
  verify_file

  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/enwik.XXXXXX")
  # shellcheck disable=SC2064  # expand now: $work is local
  trap "rm -rf '$work'" EXIT
  prepare_input "$work"

  mkdir -p "$(dirname "$OUT")"
  local bytes comp="$work/out.nncp" dec="$work/out.dec" stats="$work/stats.json"
  local -a extra
  mapfile -t extra < <(compress_args)
  bytes=$(file_size "$INPUT")
  info "compressing $bytes bytes of $FILE (${extra[*]:-default level})"

  measure /dev/null /dev/null "$work/c.log" "$NNCPP" c "$INPUT" "$comp" -f --stats-json "$stats" "${extra[@]}"
  local c_rc=$MEAS_RC c_s=$MEAS_SECONDS c_pk=$MEAS_PEAK_KB
  if ((c_rc != 0)); then
    cat "$work/c.log" >&2
    shout "compression failed (exit $c_rc)"; exit 1
  fi
  info "decompressing"
  measure /dev/null /dev/null "$work/d.log" "$NNCPP" d "$comp" "$dec" -f
  local d_rc=$MEAS_RC d_s=$MEAS_SECONDS d_pk=$MEAS_PEAK_KB
  if ((d_rc != 0)); then
    cat "$work/d.log" >&2
    shout "decompression failed (exit $d_rc)"; exit 1
  fi
  if ! cmp -- "$INPUT" "$dec"; then
    shout "ROUND TRIP MISMATCH: decompressed output differs from the input"; exit 1
  fi

  local cbytes stats_json
  cbytes=$(file_size "$comp")
  stats_json=$(jq -c . "$stats" 2>/dev/null) || { warn "stats JSON missing or invalid"; stats_json=null; }

  jq -nc \
    --arg dataset "$DATASET" --arg file "$FILE" --argjson verified "$VERIFIED" \
    --arg file_sha256 "$FILE_SHA256" \
    --argjson bytes "$bytes" --arg level "$LEVEL" --arg device "$DEVICE" --arg threads "$THREADS" \
    --argjson compressed_bytes "$cbytes" \
    --argjson cs "$c_s" --argjson ds "$d_s" \
    --arg cpk "$c_pk" --arg dpk "$d_pk" \
    --arg version "$(nncpp_version "$NNCPP")" --arg commit "$(git_commit)" \
    --arg date "$(iso_date)" --arg cpu "$(cpu_model)" --argjson nproc "$(nproc)" \
    --argjson stats "$stats_json" '
    def num_or_null: if . == "" then null else tonumber end;
    {
      dataset: $dataset, file: $file, verified: $verified,
      file_sha256: $file_sha256,
      bytes: $bytes,
      level: (($level | num_or_null) // $stats.level?),
      device: ((if $device == "" then null else $device end) // $stats.device?),
      threads: (($threads | num_or_null) // $stats.threads?),
      bpb: ((8 * $compressed_bytes / $bytes * 10000 | round) / 10000),
      compressed_bytes: $compressed_bytes,
      compress_seconds: $cs, decompress_seconds: $ds,
      compress_kBps: (($bytes / 1000 / $cs * 100 | round) / 100),
      decompress_kBps: (($bytes / 1000 / $ds * 100 | round) / 100),
      compress_peak_rss_kB: ($cpk | num_or_null),
      decompress_peak_rss_kB: ($dpk | num_or_null),
      nncpp_version: $version, git_commit: $commit, date: $date,
      cpu: $cpu, nproc: $nproc,
      stats: $stats
    }' >>"$OUT"
  info "round trip OK; appended to $OUT:"
  tail -n 1 "$OUT"
}

main "$@"
