#!/bin/bash
# Builds cluster_bench in Release (build-bench/, with the engine) and runs every cluster figure
# once: `bash bench/run_cluster_bench.sh [all|commits|join] [flags of cluster_bench]`.
# Figure lines go to stdout; progress and the machine's load to stderr. About 3 minutes for `all`
# on 2 cores; a hard limit of 10 minutes stops a run that hangs (its etcd children die with it).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${MISHKA_BENCH_BUILD:-build-bench}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMISHKA_BUILD_ENGINE=ON \
  -DMISHKA_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" --target cluster_bench -j"$(nproc)"
[ $# -eq 0 ] && set -- all
exec timeout --signal=TERM --kill-after=30 600 "$BUILD/bench/cluster_bench" "$@"
