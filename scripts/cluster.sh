#!/usr/bin/env bash
# A local cluster of mishkad nodes on loopback, for trying things out (docs/operations.md,
# "A three-node cluster on one machine"). Not for production: every node runs on this machine.
#
# Usage: scripts/cluster.sh start [N]   start node1 (the seed) and N-1 joiners (N: 1..9, default 3)
#        scripts/cluster.sh stop        SIGTERM every node, wait for each (bounded) and report
#        scripts/cluster.sh status      each node's process, /readyz and `mishkactl state`
#        scripts/cluster.sh -h|--help   this text
#
# Node i (1-based) is node<i>@127.0.0.1:<BASE+100*(i-1)>: etcd client port BASE+100*(i-1), peer
# port +1, etcd metrics +2, admin HTTP on 127.0.0.1:<BASE+100*(i-1)+10>. With the default base
# 4370: node1 4370-4372 and admin 4380, node2 4470-4472 and 4480, node3 4570-4572 and 4580.
# Each joiner lists every other node in --cluster-nodes, the seed first.
#
# Files, under $MISHKA_CLUSTER_DIR (default .mishka-cluster in the current directory):
#   cookie                  the shared cookie (created once, mode 0400; TLS between the members)
#   node<i>/data/           the node's --dir
#   node<i>/telemetry.jsonl its telemetry log
#   node<i>/output.log      its stdout and stderr
#   node<i>/pid, node<i>/exit, node<i>/admin   its pid, exit status once it ended, admin address
#
# A second `start` on the same directory restarts the cluster from its data: every node is
# started at once then, because a seed cannot serve until a majority of its voters runs.
#
# Environment:
#   MISHKA_CLUSTER_DIR    where the nodes live (default .mishka-cluster)
#   MISHKA_CLUSTER_BASE   the first node's port (default 4370)
#   MISHKA_CLUSTER_WAIT   seconds to wait for each node to be ready, and to stop (default 120)
#   MISHKAD, MISHKACTL    the binaries (default build/tools/mishkad and build/tools/mishkactl of
#                         this checkout: run scripts/run.sh --help once to build them)
#   MISHKA_ETCD           the etcd binary, passed as --etcd (default: etcd on PATH)
#
# Exit status: 0 when every node did what was asked (ready, stopped with status 0); 1 otherwise;
# 2 on bad usage.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER_DIR="${MISHKA_CLUSTER_DIR:-.mishka-cluster}"
BASE="${MISHKA_CLUSTER_BASE:-4370}"
WAIT_SECONDS="${MISHKA_CLUSTER_WAIT:-120}"
MISHKAD="${MISHKAD:-$ROOT/build/tools/mishkad}"
MISHKACTL="${MISHKACTL:-$ROOT/build/tools/mishkactl}"

usage() { sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
die() { echo "cluster.sh: $*" >&2; exit 1; }

is_number() { [[ "$1" =~ ^[0-9]+$ ]]; }

node_port() { echo $((BASE + 100 * ($1 - 1))); }
node_name() { echo "node$1@127.0.0.1:$(node_port "$1")"; }
admin_address() { echo "127.0.0.1:$(($(node_port "$1") + 10))"; }

# The status code and body of GET http://ADDRESS/PATH, as "CODE BODY" on one line; "000" when
# nothing answers. Plain bash (/dev/tcp), so that no HTTP client has to be installed.
http_get() {
  local address=$1 path=$2 reply
  # shellcheck disable=SC2016  # expanded by the inner bash
  reply=$(timeout 5 bash -c '
    exec 3<>"/dev/tcp/${0%:*}/${0##*:}" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n" "$1" "$0" >&3
    cat <&3' "$address" "$path" 2>/dev/null) || { echo "000"; return; }
  local code
  code=$(printf '%s\n' "$reply" | head -n 1 | awk '{print $2}')
  # The body: everything after the first empty line (CR LF CR LF).
  echo "${code:-000} $(printf '%s' "$reply" | tr -d '\r' | sed '1,/^$/d' | tr -d '\n')"
}

pid_alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

# The node directories that exist, in order: node1 node2 ...
existing_nodes() {
  local d
  for d in "$CLUSTER_DIR"/node*/; do
    if [[ -d "$d" ]]; then basename "$d"; fi
  done | sort -V
}

read_file() { if [[ -f "$1" ]]; then cat "$1"; fi; }

check_binaries() {
  [[ -x "$MISHKAD" ]] || die "no mishkad at $MISHKAD: run scripts/run.sh --help first (it builds build/), or set MISHKAD"
  [[ -x "$MISHKACTL" ]] || die "no mishkactl at $MISHKACTL: run scripts/run.sh --help first, or set MISHKACTL"
}

make_cookie() {
  local cookie="$CLUSTER_DIR/cookie"
  if [[ ! -f "$cookie" ]]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$cookie")
    chmod 0400 "$cookie"
  fi
}

# Starts node I in the background, detached from this shell (its own session: a Ctrl-C here does
# not reach it). A small bash wrapper waits for it and writes its exit status to node<i>/exit.
start_node() {
  local i=$1 total=$2 dir="$CLUSTER_DIR/node$1"
  mkdir -p "$dir"
  rm -f "$dir/pid" "$dir/exit"
  local args=(--node "$(node_name "$i")" --dir "$dir/data" --admin "$(admin_address "$i")"
    --cookie-file "$CLUSTER_DIR/cookie" --telemetry-log "$dir/telemetry.jsonl")
  if ((i > 1)); then
    local peers=() j
    for ((j = 1; j <= total; j++)); do
      if ((j != i)); then peers+=("$(node_name "$j")"); fi
    done
    args+=(--cluster-nodes "$(IFS=,; echo "${peers[*]}")")
  fi
  if [[ -n "${MISHKA_ETCD:-}" ]]; then args+=(--etcd "$MISHKA_ETCD"); fi
  admin_address "$i" >"$dir/admin"
  echo "--- $(date -u +%FT%TZ) cluster.sh start: $MISHKAD ${args[*]}" >>"$dir/output.log"
  # shellcheck disable=SC2016  # expanded by the inner bash
  setsid -f bash -c '
    dir=$1; shift
    "$@" >>"$dir/output.log" 2>&1 &
    echo $! >"$dir/pid"
    wait $!
    echo $? >"$dir/exit"' cluster-node "$dir" "$MISHKAD" "${args[@]}" </dev/null >/dev/null 2>&1
  local waited=0
  until [[ -s "$dir/pid" ]]; do
    ((waited++ < 50)) || die "node$i: no pid file after 5 s"
    sleep 0.1
  done
}

# Waits until node I's /readyz answers 200; 1 when its process ended or the wait ran out.
wait_ready() {
  local i=$1 dir="$CLUSTER_DIR/node$1" deadline=$((SECONDS + WAIT_SECONDS)) reply
  while ((SECONDS < deadline)); do
    reply=$(http_get "$(admin_address "$i")" /readyz)
    [[ "$reply" == 200* ]] && return 0
    if ! pid_alive "$(read_file "$dir/pid")"; then
      echo "node$i exited ($(read_file "$dir/exit" || true)); the end of $dir/output.log:" >&2
      tail -n 20 "$dir/output.log" >&2
      return 1
    fi
    sleep 0.5
  done
  echo "node$i not ready after ${WAIT_SECONDS} s (last /readyz: $reply); the end of $dir/output.log:" >&2
  tail -n 20 "$dir/output.log" >&2
  return 1
}

print_node() {
  local i=$1 dir="$CLUSTER_DIR/node$1"
  printf '%-26s admin %-16s pid %-8s log %s\n' "$(node_name "$i")" "$(admin_address "$i")" \
    "$(read_file "$dir/pid")" "$dir/output.log"
}

cmd_start() {
  local n=${1:-3}
  if ! is_number "$n" || ((n < 1 || n > 9)); then
    echo "cluster.sh: N must be 1..9, got '$n'" >&2
    exit 2
  fi
  if ! is_number "$BASE" || ((BASE < 1024 || BASE + 100 * (n - 1) + 10 > 65535)); then
    echo "cluster.sh: MISHKA_CLUSTER_BASE must leave room for $n nodes, got '$BASE'" >&2
    exit 2
  fi
  check_binaries
  local node
  for node in $(existing_nodes); do
    if pid_alive "$(read_file "$CLUSTER_DIR/$node/pid")"; then
      die "$node is running (pid $(read_file "$CLUSTER_DIR/$node/pid")): scripts/cluster.sh stop first"
    fi
  done
  mkdir -p "$CLUSTER_DIR"
  make_cookie

  local i restart=0
  if [[ -d "$CLUSTER_DIR/node1/data" ]]; then restart=1; fi
  if ((restart)); then
    echo "restarting $n nodes from $CLUSTER_DIR (all at once: a seed waits for a majority)"
    for ((i = 1; i <= n; i++)); do start_node "$i" "$n"; done
  else
    echo "starting the seed, then $((n - 1)) joiner(s), in $CLUSTER_DIR"
    start_node 1 "$n"
    wait_ready 1 || die "the seed did not become ready; scripts/cluster.sh stop stops what runs"
    for ((i = 2; i <= n; i++)); do start_node "$i" "$n"; done
  fi
  local failed=0
  for ((i = 1; i <= n; i++)); do wait_ready "$i" || failed=1; done
  for ((i = 1; i <= n; i++)); do print_node "$i"; done
  ((failed == 0)) || die "some nodes are not ready (they still run: scripts/cluster.sh stop)"
  echo "ready. Try: $MISHKACTL --admin $(admin_address 1) state"
}

cmd_stop() {
  local node pid pids=() names=()
  for node in $(existing_nodes); do
    pid=$(read_file "$CLUSTER_DIR/$node/pid")
    if pid_alive "$pid"; then
      kill -TERM "$pid"
      pids+=("$pid")
      names+=("$node")
    fi
  done
  if ((${#pids[@]} == 0)); then
    echo "no node is running in $CLUSTER_DIR"
    return 0
  fi
  # All at once: a node that stops after the others lost their quorum waits for etcd calls that
  # cannot succeed (its presence lease), so stopping them together is also quicker.
  local deadline=$((SECONDS + WAIT_SECONDS)) began=${EPOCHREALTIME//[!0-9]/} failed=0 k
  for k in "${!pids[@]}"; do
    local dir="$CLUSTER_DIR/${names[$k]}"
    while pid_alive "${pids[$k]}" && ((SECONDS < deadline)); do sleep 0.2; done
    if pid_alive "${pids[$k]}"; then
      echo "${names[$k]} (pid ${pids[$k]}) still runs after ${WAIT_SECONDS} s; see $dir/output.log" >&2
      failed=1
      continue
    fi
    # The wrapper writes the exit status right after the process ends.
    local waited=0
    while [[ ! -s "$dir/exit" ]] && ((waited++ < 50)); do sleep 0.1; done
    local status
    status=$(read_file "$dir/exit")
    local elapsed_ms=$(((${EPOCHREALTIME//[!0-9]/} - began) / 1000))
    echo "${names[$k]} (pid ${pids[$k]}) stopped within ${elapsed_ms} ms of SIGTERM, exit status ${status:-unknown}"
    [[ "$status" == 0 ]] || failed=1
  done
  return "$failed"
}

cmd_status() {
  local node any=0
  for node in $(existing_nodes); do
    any=1
    local dir="$CLUSTER_DIR/$node" pid admin
    pid=$(read_file "$dir/pid")
    admin=$(read_file "$dir/admin")
    if ! pid_alive "$pid"; then
      echo "$node: not running (last exit status: $(read_file "$dir/exit" || true))"
      continue
    fi
    echo "$node: pid $pid, admin $admin, /readyz: $(http_get "$admin" /readyz)"
    local state
    if state=$("$MISHKACTL" --admin "$admin" state 2>&1); then
      if command -v jq >/dev/null; then
        printf '%s\n' "$state" | jq -r '"  \(.node): \(.status), role \(.role), leader \(.leader), members: \([.members[] | "\(.node) (\(.role)\(if .up then "" else ", down" end))"] | join(", "))"'
      else
        printf '  %s\n' "$state"
      fi
    else
      echo "  mishkactl state failed: $state"
    fi
  done
  ((any)) || echo "no node in $CLUSTER_DIR"
}

case "${1:-}" in
  start) shift; (($# <= 1)) || { usage >&2; exit 2; }; cmd_start "$@" ;;
  stop) shift; (($# == 0)) || { usage >&2; exit 2; }; cmd_stop ;;
  status) shift; (($# == 0)) || { usage >&2; exit 2; }; check_binaries; cmd_status ;;
  -h | --help) usage ;;
  *) usage >&2; exit 2 ;;
esac
