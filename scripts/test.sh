#!/usr/bin/env bash
# The README's test command: installs dependencies, builds everything, runs every test (unit and
# integration: real processes on 127.0.0.1 with real TLS). Needs no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
BUILD_DIR=${FEDATTN_BUILD_DIR:-build}
cd "$BUILD_DIR"
ctest --output-on-failure --parallel "$(nproc)" --timeout 600
