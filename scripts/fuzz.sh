#!/usr/bin/env bash
# Fuzzes one target for longer than the test command does: scripts/fuzz.sh TARGET MINUTES
#   TARGET   config_fuzz, safetensors_fuzz, wire_fuzz, secagg_fuzz, audit_fuzz (fuzz/*.cc; `list` prints them)
#   MINUTES  wall-clock minutes (default 10)
# scripts/fuzz.sh build only builds every target (scripts/test.sh then fuzzes each for
# FEDATTN_FUZZ_SECONDS, default 5, through ctest -L fuzz in the build directory).
# Builds the libFuzzer targets with clang, ASan and UBSan into build-fuzz/ (FEDATTN_FUZZ_BUILD_DIR
# overrides), starts from the seed corpus fuzz/corpus/TARGET plus the inputs of past crashes
# fuzz/regressions/TARGET, and keeps what it learns in build-fuzz/fuzz/work/TARGET (never in the
# sources). A crash leaves its input in build-fuzz/fuzz/TARGET-crash-* and exits non-zero: copy it
# into fuzz/regressions/TARGET/ with the fix, so the test command replays it from then on.
# Extra arguments after MINUTES go to libFuzzer (e.g. -jobs=2 -workers=2).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=(config_fuzz safetensors_fuzz wire_fuzz secagg_fuzz audit_fuzz)
target=${1:-}
minutes=${2:-10}
if [ -z "$target" ] || [ "$target" = list ]; then
  echo "usage: scripts/fuzz.sh TARGET [MINUTES] [libFuzzer flags...] | build; targets: ${TARGETS[*]}"
  [ "$target" = list ] && exit 0 || exit 2
fi
shift $(( $# >= 2 ? 2 : 1 ))
build=${FEDATTN_FUZZ_BUILD_DIR:-build-fuzz}
compiler=$(command -v clang++-14 || command -v clang++ || true)
[ -n "$compiler" ] || { echo "fuzz.sh: clang++ not found (scripts/setup.sh installs clang-14)" >&2; exit 1; }
# Only the fuzz targets and the libraries they link are built here (clang cannot compile the
# LibTorch code). -O1 -g1: about half the compile time of -O2 -g, still with line numbers.
mkdir -p "$build"
CXX=$compiler cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DFEDATTN_FUZZ=ON -DFEDATTN_SANITIZE=address,undefined \
  -DFEDATTN_BUILD_BENCH=OFF -DFEDATTN_FUZZ_SECONDS="${FEDATTN_FUZZ_SECONDS:-5}" > "$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; exit 1; }
if [ "$target" = build ]; then
  exec cmake --build "$build" --parallel "$(nproc)" --target "${TARGETS[@]}"
fi
cmake --build "$build" --parallel "$(nproc)" --target "$target"
work="$build/fuzz/work/$target"
mkdir -p "$work"
inputs=("fuzz/corpus/$target")
[ -d "fuzz/regressions/$target" ] && inputs+=("fuzz/regressions/$target")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$build/fuzz/$target" -max_total_time=$(( minutes * 60 )) -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$build/fuzz/$target-" "$@" "$work" "${inputs[@]}"
