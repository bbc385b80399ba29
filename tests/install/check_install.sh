#!/usr/bin/env bash
# Installs the build into a fresh prefix and uses it as another program would: the installed tool and man
# page are there, every public header compiles on its own from the prefix, no installed file names the
# source or build tree, and examples/ configures against the prefix with find_package(nncpp), builds, and
# round-trips a file in memory; the installed `nncpp d` decodes what the example wrote.
# Usage: tests/install/check_install.sh CMAKE BUILD_DIR SOURCE_DIR CXX_COMPILER [Torch_DIR]
set -euo pipefail
cmake=$1
build=$(cd "$2" && pwd)
source=$(cd "$3" && pwd)
cxx=$4
torch_dir=${5:-}
sample=$source/data/regress/paper1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log" >&2; fail "cmake --install"; }

for f in bin/nncpp share/man/man1/nncpp.1 include/nncpp/engine.h include/nncpp/backend.h; do
  [ -f "$prefix/$f" ] || fail "$f is not installed"
done
config=$(find "$prefix" -name nncppConfig.cmake)
[ -n "$config" ] || fail "nncppConfig.cmake is not installed"
# The tool's LibTorch backend, which it loads from ../lib*/nncpp (src/cli/torch_module_loader.cpp).
[ -n "$(find "$prefix" -path '*/nncpp/libnncpp_torch.so')" ] || fail "libnncpp_torch.so is not installed in LIBDIR/nncpp"
for lib in libnncpp_core.a libnncpp_model.a; do
  [ -n "$(find "$prefix" -name "$lib")" ] || fail "$lib is not installed"
done
extra=$(cd "$prefix/include" && find . -type f ! -path './nncpp/*.h')
[ -z "$extra" ] || fail "unexpected files under include/: $extra"

# Public headers stand alone: none includes an internal one (src/core, src/model) or needs another first.
for header in "$prefix"/include/nncpp/*.h; do
  echo "#include <nncpp/$(basename "$header")>" |
    "$cxx" -std=c++17 -fsyntax-only -x c++ -I"$prefix/include" - ||
    fail "include/nncpp/$(basename "$header") does not compile on its own from the installed prefix"
done

# Relocatable: nothing installed points back into the trees it was built from.
if grep -rlF -e "$source" -e "$build" "$prefix" >"$work/leaks"; then
  fail "installed files name the source or build tree: $(tr '\n' ' ' <"$work/leaks")"
fi

args=(-S "$source/examples" -B "$work/example" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_COMPILER="$cxx"
      -DCMAKE_BUILD_TYPE=Release)
[ -z "$torch_dir" ] || args+=(-DTorch_DIR="$torch_dir")
"$cmake" "${args[@]}" >"$work/configure.log" 2>&1 || { cat "$work/configure.log" >&2; fail "examples/ does not configure against the installed package"; }
"$cmake" --build "$work/example" >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; fail "examples/ does not build against the installed package"; }

"$work/example/roundtrip" "$sample" "$work/sample.nncp" || fail "examples/roundtrip failed"
"$prefix/bin/nncpp" d -q "$work/sample.nncp" "$work/sample.out" || fail "the installed nncpp cannot decode the example's file"
cmp "$sample" "$work/sample.out" || fail "the installed nncpp decoded the example's file to other bytes"
echo "installed into a fresh prefix; examples/roundtrip built against it and its file decoded by the installed nncpp"
