#!/usr/bin/env bash
# Installs, with apt, exactly what building, testing and running chaosdrill need.
# Idempotent: when every package is present it only checks (well under a second) and
# runs `apt-get update` only when something is missing.
#
#   scripts/install-deps.sh            build + test + run
#   scripts/install-deps.sh --vm       also what tests/vm needs (qemu, cloud kernel)
#   scripts/install-deps.sh --report   also what the HTML screenshot test needs (chromium)
#   scripts/install-deps.sh --bench    also the peers make bench compares against
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang-format
  # RPC and serialisation
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev libssl-dev
  # kernel fault backends
  libnl-3-dev libnl-route-3-dev libnftables-dev nftables iproute2
  # parsing, CLI, tests
  nlohmann-json3-dev libcli11-dev catch2 libyaml-cpp-dev
  # reference service session store
  libhiredis-dev redis-server redis-sentinel
  # interop tests (a second gRPC implementation) and test tooling
  python3-grpcio python3-protobuf procps python3-jsonschema
  # a real Prometheus for the probe tests (tests/runner/probes_test.cc)
  prometheus
)

for arg in "$@"; do
  case "$arg" in
    # tests/vm/run_netem_vm.sh: qemu, the initramfs tools, and xz/zstd for compressed
    # kernel modules; the kernel itself comes with `apt-get download` (no install).
    --vm) packages+=(qemu-system-x86 cpio busybox-static kmod xz-utils zstd gzip) ;;
    --report) packages+=(chromium) ;;
    --bench) packages+=(nghttp2-client) ;;
    *) echo "install-deps.sh: unknown option '$arg' (use --vm, --report, --bench)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
