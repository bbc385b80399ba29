#!/usr/bin/env bash
# Regenerates every golden file (tests/golden/README.md) with the nncpp and golden_forge of a build:
#
#   tests/golden/make_golden.sh [BUILD_DIR]        (default: build)
#
# Run it when the nncpp version or anything that changes the coded bytes (the LSTM's numerics, the coder,
# the tokenizer, the format) changes, review the diff, and commit the new files with that change.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
nncpp=$build/nncpp
forge=$build/tests/golden_forge
data=$root/data/regress
for tool in "$nncpp" "$forge"; do
  [[ -x $tool ]] || { echo "make_golden.sh: $tool not built (cmake --build $build)" >&2; exit 1; }
done

# A tiny model, so that each file codes in well under a second; everything else from level 1. The settings
# are stored in each file, so decoding does not depend on the presets.
model=(-1 --hidden 16 --layers 1 --min-stream 256)

good=$here/good
bad=$here/bad
rm -rf "$good" "$bad"
mkdir -p "$good" "$bad"

# ---- good: originals and their compressed files ----
: >"$good/empty"
head -c 4000 "$data/paper1" >"$good/text.txt"
head -c 6000 "$data/paper1" | tail -c 3000 >"$good/tokenized.txt"
head -c 2500 "$data/obj1" >"$good/binary.bin"
head -c 1500 "$data/grammar.lsp" >"$good/streamed.lsp"
head -c 3000 "$data/paper1" >"$good/transformer.txt"
head -c 12000 "$data/paper1" >"$good/trace.txt"
python3 -c 'import random, sys; random.seed(7); sys.stdout.buffer.write(bytes(random.randrange(256) for _ in range(3000)))' >"$good/stored.bin"

cd "$good"
"$nncpp" c -q "${model[@]}" empty -o empty.nncp
"$nncpp" c -q "${model[@]}" text.txt -o text.txt.nncp
"$nncpp" c -q "${model[@]}" --vocab 400 tokenized.txt -o tokenized.txt.nncp
"$nncpp" c -q "${model[@]}" --block-size 1 binary.bin -o binary.bin.nncp
"$nncpp" c -q "${model[@]}" - <streamed.lsp >streamed.lsp.nncp
"$nncpp" c -q "${model[@]}" stored.bin -o stored.bin.nncp
attention=(--heads 2 --ff 24 --memory 8 --segment 8)
"$nncpp" c -q "${model[@]}" "${attention[@]}" --model transformer --retrain-period 2 --retrain-window 16 \
  --dropout 0.1 transformer.txt -o transformer.txt.nncp
"$nncpp" c -q "${model[@]}" "${attention[@]}" --model trace --embed 4 --group 4 --train-skip 2 \
  --train-margin 0.1 trace.txt -o trace.txt.nncp

# ---- bad: each must fail with the status the README gives, leaving no output ----
head -c 3000 "$data/obj1" | tail -c 256 >"$bad/garbage.bin"
: >"$bad/empty.nncp"
for recipe in truncated-header truncated-payload flipped-header-bit flipped-payload-bit flipped-last-record-bit \
              trailing-garbage future-version version-2 reserved-bit unknown-level absurd-model big-model \
              absurd-vocabulary other-libtorch absurd-original-size false-symbol-count many-threads header-only; do
  "$forge" "$recipe" "$good/text.txt.nncp" "$bad/$recipe.nncp"
done
for recipe in absurd-dictionary-size huge-symbol-count; do
  "$forge" "$recipe" "$good/tokenized.txt.nncp" "$bad/$recipe.nncp"
done
ls -l "$good" "$bad"
echo "make_golden.sh: done; check with: (cd $build && ctest -R golden_files --output-on-failure)"
