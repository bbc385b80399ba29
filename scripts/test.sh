#!/usr/bin/env bash
# Install, build and run the whole test suite (unit, end-to-end, CLI, regression check).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cd build
ctest --output-on-failure -j"$(nproc)"
