#!/usr/bin/env bash
# scripts/gpu_deps.sh DIR — unpacks Debian's CLI11, spdlog and fmt (headers, libraries, CMake configs) into
# DIR, for a GPU machine that has PyTorch but no internet or apt. Run it where apt works, carry DIR with the
# working tree (.gpu-deps is git-ignored), and point CMake at both prefixes there (bench/gpu_env.sh does):
#   cmake -S . -B build -DCMAKE_PREFIX_PATH="$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)');$PWD/DIR/usr"
#   export LD_LIBRARY_PATH=$PWD/DIR/usr/lib/x86_64-linux-gnu:$LD_LIBRARY_PATH
# PyTorch 2.11's torch/include bundles fmt 12, which shadows Debian's fmt 9 and breaks Debian's spdlog 1.10
# ("'basic_runtime' is not a member of 'fmt'"): CMakeLists.txt lists spdlog::spdlog before
# ${TORCH_LIBRARIES}, so spdlog's include path comes first (checked with LibTorch 2.11 CUDA on an H200).
set -euo pipefail
dir=${1:?usage: scripts/gpu_deps.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
pkgs="libcli11-dev libspdlog-dev libspdlog1.10 libfmt-dev libfmt9"
# shellcheck disable=SC2086  # a list of package names
apt-get download $pkgs >/dev/null 2>&1 || {
  apt-get update -qq >/dev/null
  apt-get download $pkgs >/dev/null
}
for d in *.deb; do dpkg-deb -x "$d" "$dir"; done
echo "unpacked $pkgs into $dir"
