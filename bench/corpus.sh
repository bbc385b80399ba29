#!/usr/bin/env bash
# corpus.sh — build a reproducible large English text corpus (about 99 MB) for enwik-size runs, since
# enwik8/enwik9 cannot always be downloaded: the documentation of four pinned Debian 12 packages (Python's
# HTML manual and its reST sources, PostgreSQL's HTML manual, Perl's POD, Git's HTML and text pages).
#
# Usage: bench/corpus.sh [OUT]        (default bench/out/corpus.txt)
#
# Downloads the four .deb files with apt-get download (exact versions; a version gone from the mirror is on
# snapshot.debian.org), checks their SHA-256, unpacks them into a scratch folder and concatenates every
# *.html, *.txt and *.pod file, package by package in the order below, paths in byte order (LC_ALL=C),
# without separators. The result's size and SHA-256 are checked; prefixes of it (head -c) serve for
# shorter runs (bench/enwik.sh --file OUT --bytes N).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

OUT=${1:-$BENCH_DIR/out/corpus.txt}
# package=version sha256-of-the-.deb
PACKAGES=(
  "python3.11-doc=3.11.2-6+deb12u9 5b3594189d6ef9a6963ce0347fd307a1cc67620ad697e144db366070e2e146be"
  "postgresql-doc-15=15.20-0+deb12u1 4c44bf2c599f208b3f46454a6cf7a72e25ec46ff74d37b59dd31ad76b00eebb7"
  "perl-doc=5.36.0-7+deb12u4 f4269cff4576d6f02a6756df842988e58451c7e945b08517dd235531b24e48f8"
  "git-doc=1:2.39.5-0+deb12u3 3c89668a11053a6bafade3de1f611f4613db31e082af63f43d8c5b69ad8795ec"
)
CORPUS_SIZE=98660080
CORPUS_SHA256=e846b2a6fa019e073ffa57ec205ea7be7219e702adb506addeff29c3c5dfb74c

require_cmd apt-get apt
require_cmd dpkg-deb dpkg
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$OUT")"
: >"$work/corpus"
for entry in "${PACKAGES[@]}"; do
  spec=${entry% *}
  sum=${entry#* }
  name=${spec%%=*}
  (cd "$work" && apt-get download "$spec" >/dev/null 2>&1) ||
    die "apt-get download $spec failed (no network, or the version left the mirror: see snapshot.debian.org)"
  deb=$(ls "$work"/"${name}"_*.deb)
  echo "$sum  $deb" | sha256sum -c --quiet - || die "$deb: SHA-256 differs from the pinned one"
  mkdir "$work/$name"
  dpkg-deb -x "$deb" "$work/$name"
  (cd "$work/$name" && find . -type f \( -name '*.html' -o -name '*.txt' -o -name '*.pod' \) -print0 |
    LC_ALL=C sort -z | xargs -0 cat) >>"$work/corpus"
  info "$name: $(stat -c %s "$work/corpus") bytes so far"
done
size=$(stat -c %s "$work/corpus")
sha=$(sha256sum "$work/corpus" | cut -d' ' -f1)
[[ $size == "$CORPUS_SIZE" && $sha == "$CORPUS_SHA256" ]] ||
  die "corpus: $size bytes, SHA-256 $sha; expected $CORPUS_SIZE bytes, $CORPUS_SHA256"
mv "$work/corpus" "$OUT"
info "wrote $OUT ($size bytes, SHA-256 $sha)"
