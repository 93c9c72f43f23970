#!/usr/bin/env bash
# Configures and builds FedAttn into build/ (Ninja, ccache, RelWithDebInfo). Extra arguments are
# build targets (default: everything).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${FEDATTN_BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
if [ "$#" -gt 0 ]; then
  cmake --build "$BUILD_DIR" --parallel "$(nproc)" --target "$@"
else
  cmake --build "$BUILD_DIR" --parallel "$(nproc)"
fi
