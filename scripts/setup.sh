#!/usr/bin/env bash
# Installs the Debian 12 packages mishka needs to build, test, fuzz and benchmark.
# Idempotent: asks dpkg what is present and installs only what is missing, so a second run
# finishes in well under a second. Runs as root, or through sudo when it is not root.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  clang clang-format libclang-rt-14-dev  # libclang-rt: libFuzzer and the sanitizer runtimes
  # libraries (ARCHITECTURE.md, decision 10)
  libgtest-dev libgmock-dev libbenchmark-dev libabsl-dev libmsgpack-cxx-dev libssl-dev
  libtomlplusplus-dev nlohmann-json3-dev libcpp-httplib-dev libspdlog-dev
  # the generated etcd client: protoc, the gRPC plugin and the runtime libraries
  protobuf-compiler protobuf-compiler-grpc libgrpc++-dev libprotobuf-dev
  # etcd itself, and the .proto files the client is generated from (etcd, gogo, googleapis)
  etcd-server etcd-client golang-etcd-server-dev golang-github-gogo-protobuf-dev
  golang-github-grpc-ecosystem-grpc-gateway-dev
  # promtool, to check the metrics we export
  prometheus
)

# One dpkg-query for all of them; "ii" means installed and configured. Unknown packages are
# simply absent from its output (it complains on stderr and exits 1).
declare -A installed=()
while read -r pkg status; do
  if [[ "$status" == ii* ]]; then installed["$pkg"]=1; fi
done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null || true)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if [[ -z "${installed[$pkg]:-}" ]]; then missing+=("$pkg"); fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#PACKAGES[@]} packages are installed"
  exit 0
fi

SUDO=()
if ((EUID != 0)); then
  if ! command -v sudo >/dev/null; then
    echo "setup: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
  SUDO=(sudo)
fi

echo "setup: installing ${#missing[@]} package(s): ${missing[*]}"

# etcd-server and prometheus ship init scripts; keep their postinst from starting daemons that
# would outlive the install (a container has no service manager to own them). Only when no
# policy is in place already, and removed again on exit.
policy=/usr/sbin/policy-rc.d
added_policy=0
cleanup() {
  if ((added_policy)); then "${SUDO[@]}" rm -f "$policy"; fi
}
trap cleanup EXIT
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
  "${SUDO[@]}" chmod 755 "$policy"
  added_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  "${missing[@]}"
echo "setup: done"
