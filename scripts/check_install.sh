#!/usr/bin/env bash
# Checks what `cmake --install` gives a program that embeds mishka (docs/embedding.md):
#
#   1. builds the installed libraries in BUILD_DIR (target mishka_libraries: a no-op when the
#      tree is built already), then `cmake --install BUILD_DIR --prefix <temporary dir>`
#   2. the installed tree: headers only under include/mishka, each of them compiles alone, and
#      no installed CMake or pkg-config file names the source or build tree
#   3. examples/ built as a separate CMake project with find_package(mishka) from that prefix,
#      and a project linking mishka::mishka (repo and admin) configured
#   4. examples/embed_repo/main.cc compiled and linked with `pkg-config --cflags --libs mishka`
#   5. both programs answer --help; with `etcd` on PATH, each runs for real: a standalone seed
#      in a temporary directory on free loopback ports writes and reads a record and stops (the
#      second run reopens the first one's directory and must find itself in the same cluster)
#
# Usage: scripts/check_install.sh [BUILD_DIR]   (default: build; configured already)
# Environment:
#   MISHKA_JOBS            build parallelism (default: number of CPUs)
#   MISHKA_KEEP_INSTALL=1  keep the temporary directory and print its path
#   CXX                    the compiler of steps 2 and 4 (default: c++)
# Exits 0 only when every check passed; the failing check says what was wrong.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
  exit 0
fi
BUILD_DIR="${1:-build}"
JOBS="${MISHKA_JOBS:-$(nproc)}"
CXX="${CXX:-c++}"
RUN_TIMEOUT=90  # seconds for one run of the example (etcd's start included)

die() {
  echo "check_install: $*" >&2
  exit 1
}
step() { printf '\n--> %s\n' "$*"; }
run() {
  printf '+ %s\n' "$*"
  "$@"
}

[[ -f "$BUILD_DIR/CMakeCache.txt" ]] ||
  die "$BUILD_DIR is not a configured build tree (cmake --preset default, or cmake -S . -B $BUILD_DIR)"
grep -q '^MISHKA_BUILD_ENGINE:BOOL=ON' "$BUILD_DIR/CMakeCache.txt" ||
  die "$BUILD_DIR was configured without MISHKA_BUILD_ENGINE: the example needs the repo"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/mishka-install.XXXXXX")"
cleanup() {
  if [[ "${MISHKA_KEEP_INSTALL:-0}" == 1 ]]; then
    echo "check_install: kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
PREFIX="$WORK/prefix"

# --- 1. build and install ------------------------------------------------------------------------
step "install $BUILD_DIR into $PREFIX"
run cmake --build "$BUILD_DIR" --target mishka_libraries -j "$JOBS"
echo "+ cmake --install $BUILD_DIR --prefix $PREFIX"
cmake --install "$BUILD_DIR" --prefix "$PREFIX" >"$WORK/install.log" ||
  { cat "$WORK/install.log" >&2; die "cmake --install failed"; }
echo "installed $(grep -c '^-- Installing' "$WORK/install.log") files"

# --- 2. the installed tree -----------------------------------------------------------------------
step "installed headers and package files"
stray="$(find "$PREFIX/include" -type f ! -path "$PREFIX/include/mishka/*")"
[[ -z "$stray" ]] || die "headers installed outside include/mishka: $stray"
diff <(cd include/mishka && ls) <(cd "$PREFIX/include/mishka" && ls) ||
  die "the installed include/mishka differs from the source's (above: < source, > installed)"
headers=0
for header in "$PREFIX"/include/mishka/*.h; do
  headers=$((headers + 1))
  name="mishka/$(basename "$header")"
  echo "#include <$name>" | "$CXX" -std=c++20 -fsyntax-only -Wall -Wextra -Werror \
    -I"$PREFIX/include" -x c++ - || die "$name does not compile alone against the installed tree"
done
echo "each of the $headers headers compiles alone"
config="$(find "$PREFIX" -name mishkaConfig.cmake)"
pc_file="$(find "$PREFIX" -name mishka.pc)"
[[ -n "$config" ]] || die "no mishkaConfig.cmake installed"
[[ -n "$pc_file" ]] || die "no mishka.pc installed"
if grep -l -e "$ROOT" "$(dirname "$config")"/*.cmake "$pc_file"; then
  die "the installed package files above name the source or build tree ($ROOT)"
fi

# --- 3. the example with find_package ------------------------------------------------------------
step "examples/ with find_package(mishka)"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
configure=(cmake -S examples -B "$WORK/examples-cmake" "${generator[@]}"
  -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=RelWithDebInfo
  -DCMAKE_CXX_FLAGS="-Wall -Wextra -Werror")
echo "+ ${configure[*]}"
"${configure[@]}" >"$WORK/examples-configure.log" ||
  { cat "$WORK/examples-configure.log" >&2; die "configuring examples/ failed"; }
found_dir="$(sed -n 's/^mishka_DIR:PATH=//p' "$WORK/examples-cmake/CMakeCache.txt")"
[[ "$found_dir" == "$PREFIX"/* ]] ||
  die "find_package(mishka) found $found_dir, not the package installed in $PREFIX"
run cmake --build "$WORK/examples-cmake" -j "$JOBS"
CMAKE_BIN="$WORK/examples-cmake/embed_repo"
# mishka::mishka (repo and admin) resolves: generating a project that links it checks every
# target its link interface names, cpp-httplib's included (nothing is compiled).
mkdir "$WORK/whole"
printf '%s\n' 'cmake_minimum_required(VERSION 3.16)' 'project(mishka_whole LANGUAGES CXX)' \
  'find_package(mishka 0.1 REQUIRED)' "add_executable(whole \"$ROOT/examples/embed_repo/main.cc\")" \
  'target_link_libraries(whole PRIVATE mishka::mishka)' >"$WORK/whole/CMakeLists.txt"
cmake -S "$WORK/whole" -B "$WORK/whole/build" "${generator[@]}" -DCMAKE_PREFIX_PATH="$PREFIX" \
  >"$WORK/whole.log" 2>&1 ||
  { cat "$WORK/whole.log" >&2; die "a project linking mishka::mishka does not configure"; }
echo "a project linking mishka::mishka configures"

# --- 4. the example with pkg-config --------------------------------------------------------------
step "examples/embed_repo with pkg-config"
PKG_CONFIG_PATH="$(dirname "$pc_file")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_PATH
run pkg-config --modversion mishka
pc_flags="$(pkg-config --cflags --libs mishka)" || die "pkg-config --cflags --libs mishka failed"
PC_BIN="$WORK/embed_repo-pkgconfig"
# The module's flags alone (plus the C++20 the headers need); $pc_flags is split on purpose.
# shellcheck disable=SC2086
run "$CXX" -std=c++20 -Wall -Wextra -Werror -O1 examples/embed_repo/main.cc $pc_flags -o "$PC_BIN"

# --- 5. run them ---------------------------------------------------------------------------------
step "run the examples"
for bin in "$CMAKE_BIN" "$PC_BIN"; do
  "$bin" --help | grep -q '^usage: embed_repo' || die "$bin --help did not print its usage"
done
echo "both answer --help"
if ! command -v etcd >/dev/null; then
  echo "check_install: etcd is not on PATH: the examples were built but not run against etcd"
  exit 0
fi

# A port nothing listens on (bash's /dev/tcp connects; a refused connection means free).
port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Two consecutive free ports, client and peer, from a random start in 20000..59999.
pick_ports() {
  local port
  for _ in $(seq 50); do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    if port_is_free "$port" && port_is_free $((port + 1)); then
      echo "$port"
      return 0
    fi
  done
  die "no two free consecutive loopback ports found"
}

# Runs one example on DIR and PORT and checks what it printed.
run_example() {
  local bin="$1" dir="$2" port="$3" out="$WORK/run.out" rc=0
  printf '+ timeout %s %s %s %s\n' "$RUN_TIMEOUT" "$bin" "$dir" "$port"
  timeout --kill-after=10 "$RUN_TIMEOUT" "$bin" "$dir" "$port" >"$out" 2>&1 || rc=$?
  cat "$out"
  ((rc != 124 && rc != 137)) || die "$bin did not end within ${RUN_TIMEOUT}s"
  ((rc == 0)) || die "$bin failed (exit $rc)"
  grep -qx 'record: \["en", "hello, world"\]' "$out" || die "$bin did not print the record"
  grep -q '^state: .*"status": "synchronized"' "$out" || die "$bin's state is not synchronized"
}

# The cluster id in the state the last run printed.
cluster_id() { sed -n 's/^state: .*"cluster_id": "\([0-9a-f]*\)".*/\1/p' "$WORK/run.out"; }

port="$(pick_ports)"
data_dir="$WORK/node"
run_example "$CMAKE_BIN" "$data_dir" "$port"
first_cluster="$(cluster_id)"
# The same directory and ports (the node's name holds its port): the second boot reopens the
# node, so it is in the first run's cluster.
run_example "$PC_BIN" "$data_dir" "$port"
[[ -n "$first_cluster" && "$(cluster_id)" == "$first_cluster" ]] ||
  die "the second run did not reopen the first one's cluster ($first_cluster, then $(cluster_id))"
echo
echo "check_install: PASSED (installed, headers alone, find_package, pkg-config, runs on etcd)"
