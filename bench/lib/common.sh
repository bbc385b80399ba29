# shellcheck shell=bash
# Helpers shared by the bench/ scripts. Source it; do not run it.
#
#   BENCH_DIR  the bench/ folder        REPO_DIR  the repository root

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
PROG=$(basename "$0")

# usage [STATUS]: prints the calling script's header comment (its help) and exits.
usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
  exit "${1:-2}"
}

die()  { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 2; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
info() { printf '%s: %s\n' "$PROG" "$*" >&2; }

# Loud, multi-line failure banner (used for round-trip failures).
shout() {
  printf '\n%s: ************************************************************\n' "$PROG" >&2
  printf '%s: *** FAILURE: %s\n' "$PROG" "$*" >&2
  printf '%s: ************************************************************\n\n' "$PROG" >&2
}

# ensure_cmd CMD PACKAGE: make CMD available, apt-installing PACKAGE when we
# are root and it is missing. Returns 1 (without dying) if it stays missing.
ensure_cmd() {
  local cmd=$1 pkg=$2
  if [[ -x $cmd ]] || command -v "$cmd" >/dev/null 2>&1; then return 0; fi
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    info "installing $pkg (for $cmd)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null 2>&1 || true
  fi
  [[ -x $cmd ]] || command -v "$cmd" >/dev/null 2>&1
}

# require_cmd CMD PACKAGE: like ensure_cmd, but dies when it stays missing.
require_cmd() {
  ensure_cmd "$1" "$2" || die "'$1' is required (Debian package '$2')"
}

# The GNU time binary (not the shell keyword) gives peak RSS.
GNU_TIME=/usr/bin/time
require_gnu_time() { require_cmd "$GNU_TIME" time; }

now() { date +%s.%N; }

# Floating-point helpers (awk; no bc dependency).
fcalc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
# bpb BYTES_IN BYTES_OUT -> bits per input byte, 4 decimals
bpb() { awk -v i="$1" -v o="$2" 'BEGIN { if (i > 0) printf "%.4f", 8 * o / i; else print "nan" }'; }
# kbps BYTES SECONDS -> KB/s (1 KB = 1000 bytes), 2 decimals
kbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.2f", b / 1000 / s; else print "inf" }'; }

file_size() { stat -c %s -- "$1"; }

# measure STDIN STDOUT STDERR CMD [ARGS...]
# Runs CMD once under GNU time with the given redirections ("-" keeps the
# caller's stream; use /dev/null to discard). Sets:
#   MEAS_RC       exit status of CMD
#   MEAS_SECONDS  wall-clock seconds (date +%s.%N around the run)
#   MEAS_PEAK_KB  peak resident set size in kB (GNU time %M), "" if unknown
# shellcheck disable=SC2034  # MEAS_* are read by the callers
measure() {
  local in=$1 out=$2 err=$3; shift 3
  local tf t0 t1
  tf=$(mktemp)
  t0=$(now)
  if (
    [[ $in  != - ]] && exec <"$in"
    [[ $out != - ]] && exec >"$out"
    [[ $err != - ]] && exec 2>"$err"
    exec "$GNU_TIME" -f '%M' -o "$tf" -- "$@"
  ); then MEAS_RC=0; else MEAS_RC=$?; fi
  t1=$(now)
  MEAS_SECONDS=$(fcalc "$t1 - $t0")
  # On failure GNU time writes "Command exited with non-zero status N" first.
  MEAS_PEAK_KB=$(tail -n 1 "$tf" | tr -cd '0-9')
  rm -f "$tf"
}

# default_nncpp: the binary a normal build produces.
default_nncpp() { printf '%s/build/nncpp\n' "$REPO_DIR"; }

# check_nncpp PATH: dies unless PATH is an executable.
check_nncpp() {
  [[ -x $1 ]] || die "nncpp binary not found or not executable: $1 (build it with: cmake -S . -B build && cmake --build build -j2, or pass --nncpp PATH)"
}

# nncpp_version PATH -> first line of `nncpp -V` (e.g. "nncpp 0.1.0 abc123")
nncpp_version() { "$1" -V 2>/dev/null | head -n 1 || true; }

git_commit() {
  git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown
}

cpu_model() {
  lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1
}

iso_date() { date -u +%Y-%m-%dT%H:%M:%SZ; }
