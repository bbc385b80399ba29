#!/usr/bin/env bash
# Round trip of a large generated input (default 300 MB) in separate processes, reporting wall time, KB/s
# and peak resident memory of each side: shows that memory stays bounded (blocks, bounded buffers) however
# long the input is.
#
#   bench/big_roundtrip.sh [--nncpp PATH] [--mb N] [--work DIR] [-- nncpp c flags...]
#
# The input is text-like but not periodic: lines of data/regress files with a running counter, so the
# tokenizer and the match model see fresh material throughout.
set -euo pipefail
cd "$(dirname "$0")/.."
nncpp=build/nncpp
mb=300
work=${TMPDIR:-/tmp}/nncpp-big
while [[ $# -gt 0 ]]; do
  case $1 in
    --nncpp) nncpp=$2; shift 2 ;;
    --mb) mb=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "big_roundtrip.sh: unknown argument $1" >&2; exit 3 ;;
  esac
done
mkdir -p "$work"
in=$work/big.in
python3 - "$in" "$mb" <<'PY'
import glob, sys
path, mb = sys.argv[1], int(sys.argv[2])
lines = []
for f in sorted(glob.glob("data/regress/*")) + ["data/alice29.txt"]:
    lines += open(f, "rb").read().split(b"\n")
target = mb * 1000 * 1000
with open(path, "wb") as out:
    n, i = 0, 0
    while n < target:
        chunk = b"%d " % i + lines[(i * 7919) % len(lines)] + b"\n"
        out.write(chunk)
        n += len(chunk)
        i += 1
    out.truncate(target)
PY
# Peak RSS of a child process from the kernel's accounting (no /usr/bin/time needed).
measure() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.time()
rc = subprocess.call(sys.argv[1:])
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print("rc=%d wall_s=%.1f user_s=%.1f peak_rss_MB=%.1f" % (rc, time.time() - t, ru.ru_utime, ru.ru_maxrss / 1024))
sys.exit(rc)
PY
}
echo "input: $(stat -c %s "$in") bytes; flags: $*"
echo -n "compress:   "; measure "$nncpp" c -q -f "$in" "$work/big.nncp" --stats-json "$work/c.json" "$@"
echo -n "decompress: "; measure "$nncpp" d -q -f "$work/big.nncp" "$work/big.out" --stats-json "$work/d.json"
cmp "$in" "$work/big.out" && echo "round trip: identical"
python3 -c "import json;c=json.load(open('$work/c.json'));d=json.load(open('$work/d.json'));print('bpb %.4f  c %.1f KB/s  d %.1f KB/s  blocks %d' % (c['bpb'], c['kBps'], d['kBps'], c['blocks']))"
rm -f "$in" "$work/big.out" "$work/big.nncp"
