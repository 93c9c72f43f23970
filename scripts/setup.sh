#!/usr/bin/env bash
# Installs every Debian 12 package FedAttn needs to build, test and run. Idempotent: when all
# packages are present it only re-checks the BLAS selection. No network other than apt.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git rsync
  libtorch-dev libopenblas0-pthread libopenblas-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libssl-dev libyaml-cpp-dev libsqlite3-dev sqlite3
  libopenmpi-dev openmpi-bin
  libgtest-dev libgmock-dev libbenchmark-dev
  libabsl-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev libcpp-httplib-dev
  python3-torch
  chromium fonts-dejavu-core  # headless browser test of the dashboard (tests/integration/dashboard_http_test.cc)
  clang-14 libclang-rt-14-dev  # libFuzzer and the sanitizer runtimes for clang (scripts/fuzz.sh)
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup.sh: run as root (or install sudo)" >&2; exit 1; }
  SUDO="sudo"
fi

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's LibTorch multiplies matrices through libblas.so.3. With the reference BLAS behind it a
# matrix product is ~15x slower than with OpenBLAS, so make sure OpenBLAS is the selected one.
alternative=libblas.so.3-x86_64-linux-gnu
openblas=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
current=$(update-alternatives --query "$alternative" | awk '/^Value:/ {print $2}')
if [ "$current" != "$openblas" ]; then
  echo "setup.sh: selecting OpenBLAS for libblas.so.3 (was ${current:-none})"
  $SUDO update-alternatives --set "$alternative" "$openblas"
fi
current=$(update-alternatives --query "$alternative" | awk '/^Value:/ {print $2}')
if [ "$current" != "$openblas" ]; then
  echo "setup.sh: libblas.so.3 is $current, not OpenBLAS; LibTorch would be ~15x slower" >&2
  exit 1
fi
echo "setup.sh: dependencies ready (libblas.so.3 -> OpenBLAS)"
