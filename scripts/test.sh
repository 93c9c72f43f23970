#!/usr/bin/env bash
# The README's test command: installs dependencies, builds everything, runs every test (unit and
# integration: real processes on 127.0.0.1 with real TLS; the load test; each fuzz target's seed
# corpus and past crash inputs, replayed). Needs no GPU.
#
#   scripts/test.sh              the above, in build/ (FEDATTN_BUILD_DIR overrides)
#   scripts/test.sh --sanitize   builds with FEDATTN_SANITIZE (default address,undefined; or
#                                thread) into build-sanitize-<sanitizers>/ and runs the unit and
#                                integration tests under tests/sanitizers/ runtime options
#                                (thread first checks that TSan can see abseil's locks)
#   then, in every run but --sanitize, builds the libFuzzer targets with clang into build-fuzz/
#   and fuzzes each for FEDATTN_FUZZ_SECONDS (default 5) from its seed corpus
#   (docs/operations.md, "Testing: sanitizers, fuzzing, load").
set -euo pipefail
cd "$(dirname "$0")/.."
sanitize=0
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=1 ;;
    --fuzz) ;;  # the default now; kept so older instructions still work
    *) echo "usage: scripts/test.sh [--sanitize]" >&2; exit 2 ;;
  esac
done
scripts/setup.sh

if [ "$sanitize" = 1 ]; then
  sanitizers=${FEDATTN_SANITIZE:-address,undefined}
  if [[ ",$sanitizers," == *,thread,* ]]; then
    # ThreadSanitizer must see every lock. Our locks are abseil's, from Debian's uninstrumented
    # libabsl: check on a correctly locked counter that TSan sees them before running anything.
    probe=$(mktemp -d)
    clang++-14 -std=c++20 -O1 -g -fsanitize=thread tests/sanitizers/tsan_abseil_probe.cc -o "$probe/probe" \
      $(pkg-config --libs absl_synchronization)
    if ! TSAN_OPTIONS=halt_on_error=1 "$probe/probe" > "$probe/report" 2>&1; then
      grep -m1 "WARNING: ThreadSanitizer" "$probe/report" >&2 || cat "$probe/report" >&2
      echo "scripts/test.sh --sanitize: ThreadSanitizer reports a race on a correctly locked absl::Mutex" \
        "(tests/sanitizers/tsan_abseil_probe.cc): this system's abseil is not built with TSan, so every" \
        "report on our absl::Mutex-guarded state would be false. A thread-sanitized run needs abseil (and" \
        "gRPC) built with -fsanitize=thread; see docs/operations.md, \"Sanitizers\"." >&2
      rm -rf "$probe"
      exit 2
    fi
    rm -rf "$probe"
  fi
  BUILD_DIR=${FEDATTN_BUILD_DIR:-build-sanitize-${sanitizers//,/-}}
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    # gcc, not clang: clang cannot parse LibTorch 1.13's headers in C++20 against libstdc++ 12
    # (c10::IValue incomplete in std::vector). -O1 -g1 keeps the build within reach of 2 cores.
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFEDATTN_SANITIZE="$sanitizers" \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DFEDATTN_BUILD_BENCH=OFF
  fi
  cmake --build "$BUILD_DIR" --parallel "$(nproc)"
  # shellcheck source=../tests/sanitizers/env.sh
  source tests/sanitizers/env.sh
  cd "$BUILD_DIR"
  # The load test measures memory; under a sanitizer it measures the sanitizer.
  ctest --output-on-failure --parallel "$(nproc)" --timeout 1800 --label-exclude load
  exit 0
fi

scripts/build.sh
BUILD_DIR=${FEDATTN_BUILD_DIR:-build}
(cd "$BUILD_DIR" && ctest --output-on-failure --parallel "$(nproc)" --timeout 600)

# Short fuzzing: each libFuzzer target (clang, ASan + UBSan, the same build scripts/fuzz.sh uses)
# for FEDATTN_FUZZ_SECONDS from its seed corpus and past crash inputs.
scripts/fuzz.sh build
source tests/sanitizers/env.sh
(cd "${FEDATTN_FUZZ_BUILD_DIR:-build-fuzz}" && ctest --output-on-failure --label-regex fuzz)
