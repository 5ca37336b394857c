#!/usr/bin/env bash
# The Mnesia side of bench/compare (issue 7): ONE run of ONE group per invocation.
#
#   bash bench/side_by_side/mnesia_runner.sh <group> --run N [--seconds S] [--warmup-ms MS]
#        [--data DIR]
#   groups: n1_commits n1_reads n1_boot n3_commits n3_join
#
# stdout: only the spec's `RESULT ...` lines, printed when the whole run succeeded.
# stderr: progress and errors. Exit status 0 on success, non-zero otherwise (124 when the
# hard time cap was reached).
#
# Every beam and the private epmd are started by this script, tracked by PID and stopped
# by PID on exit (also on failure, timeout, INT or TERM). Scratch data lives in a fresh
# directory under ${TMPDIR:-/tmp} that is removed at the end; only --data survives (the
# n1_boot data sets, rebuilt when their marker file is missing). Distribution (n3_*)
# is bound to 127.0.0.1 with an epmd of our own on a free port.
set -u -o pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
readonly SOURCE="$SCRIPT_DIR/mnesia_bench.erl"

usage() {
  echo "usage: $0 <n1_commits|n1_reads|n1_boot|n3_commits|n3_join> --run N" \
    "[--seconds S] [--warmup-ms MS] [--data DIR]" >&2
  exit 2
}

GROUP=${1:-}
[ -n "$GROUP" ] || usage
shift
RUN=""
SECONDS_OPT=5
WARMUP_MS=500
DATA_DIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --run) RUN=${2:-}; shift 2 || usage ;;
    --seconds) SECONDS_OPT=${2:-}; shift 2 || usage ;;
    --warmup-ms) WARMUP_MS=${2:-}; shift 2 || usage ;;
    --data) DATA_DIR=${2:-}; shift 2 || usage ;;
    *) echo "mnesia_runner: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ "$RUN" =~ ^[0-9]+$ ]] || { echo "mnesia_runner: --run needs a number" >&2; usage; }
[[ "$SECONDS_OPT" =~ ^[0-9]+([.][0-9]+)?$ && ! "$SECONDS_OPT" =~ ^0*([.]0*)?$ ]] ||
  { echo "mnesia_runner: --seconds needs a positive number" >&2; usage; }
[[ "$WARMUP_MS" =~ ^[0-9]+$ ]] || { echo "mnesia_runner: bad --warmup-ms" >&2; usage; }
case "$GROUP" in
  n1_commits | n1_reads | n1_boot | n3_commits | n3_join) ;;
  *) echo "mnesia_runner: group '$GROUP' has no Mnesia side" >&2; usage ;;
esac

log() { echo "mnesia_runner[$GROUP run $RUN]: $*" >&2; }

# ---------------------------------------------------------------- time bound
# Measured windows are (warm-up + S) per round, 4 rounds for the commit groups; the
# rest is setup (preload, cluster start). The first n1_boot also builds 1M rows.
START_EPOCH=$(date +%s)
SECONDS_CEIL=$(printf '%.0f' "$SECONDS_OPT")
CAP_S=$((300 + 8 * SECONDS_CEIL + 8 * WARMUP_MS / 1000))
DEADLINE=$((START_EPOCH + CAP_S))
CURRENT_STEP="start"

# ---------------------------------------------------------------- processes
STARTED_PIDS=()
SCRATCH=""

# A PID counts as ours only while it is still our child: a PID that was reaped and
# reused by someone else is never signalled.
is_our_child() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  local after_comm=${stat##*) }
  local fields
  read -r -a fields <<<"$after_comm"
  [ "${fields[1]:-}" = "$$" ]
}

forget_pid() {
  local keep=() p
  for p in "${STARTED_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  STARTED_PIDS=("${keep[@]}")
}

# TERM (a beam then stops Mnesia cleanly), up to 10 s of grace, then KILL.
stop_all() {
  local p alive i
  for p in "${STARTED_PIDS[@]}"; do is_our_child "$p" && kill -TERM "$p" 2>/dev/null; done
  for ((i = 0; i < 100; i++)); do
    alive=0
    for p in "${STARTED_PIDS[@]}"; do
      if is_our_child "$p" && is_alive "$p"; then alive=1; fi
    done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${STARTED_PIDS[@]}"; do
    if is_our_child "$p" && is_alive "$p"; then
      log "PID $p did not stop on TERM; sending KILL"
      kill -KILL "$p" 2>/dev/null
    fi
  done
  for p in "${STARTED_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  STARTED_PIDS=()
}

# Running or sleeping, i.e. neither exited nor a zombie.
is_alive() {
  case "$(state_of "$1")" in gone | Z | X | x) return 1 ;; *) return 0 ;; esac
}

state_of() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo gone; return; }
  local after_comm=${stat##*) }
  echo "${after_comm%% *}"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_all
  [ -n "$SCRATCH" ] && rm -rf "$SCRATCH"
  log "finished in $(($(date +%s) - START_EPOCH)) s (exit $rc)"
  exit $rc
}
trap cleanup EXIT
trap 'log "interrupted (INT) during $CURRENT_STEP"; exit 130' INT
trap 'log "terminated (TERM) during $CURRENT_STEP"; exit 143' TERM
# A reader that goes away must not kill this script before it has stopped its processes.
trap '' PIPE

check_deadline() {
  if [ "$(date +%s)" -ge "$DEADLINE" ]; then
    log "hard cap of ${CAP_S} s exceeded during $CURRENT_STEP; stopping everything"
    exit 124
  fi
}

# ---------------------------------------------------------------- build
BUILD_ROOT=${MISHKA_BENCH_BUILD:-build-bench}
[[ "$BUILD_ROOT" = /* ]] || BUILD_ROOT="$REPO_ROOT/$BUILD_ROOT"
readonly EBIN="$BUILD_ROOT/mnesia"
if [ ! -f "$EBIN/mnesia_bench.beam" ] || [ "$SOURCE" -nt "$EBIN/mnesia_bench.beam" ]; then
  log "compiling $SOURCE into $EBIN"
  mkdir -p "$EBIN" || exit 1
  # Compile aside and rename, so a concurrent invocation never loads a half-written beam.
  tmp_ebin=$(mktemp -d "$EBIN/.compile.XXXXXX") || exit 1
  if ! erlc -Werror -o "$tmp_ebin" "$SOURCE"; then
    rm -rf "$tmp_ebin"
    log "erlc failed"
    exit 1
  fi
  mv -f "$tmp_ebin/mnesia_bench.beam" "$EBIN/mnesia_bench.beam"
  rm -rf "$tmp_ebin"
fi

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/mishka-mnesia-$GROUP.XXXXXX") || exit 1
RESULTS="$SCRATCH/results.txt"
: >"$RESULTS"
# A beam that dies writes erl_crash.dump into its working directory, the repository: send it
# to the scratch dir instead (removed at exit; the beam's own output says why it died).
export ERL_CRASH_DUMP="$SCRATCH/erl_crash.dump"

COMMON_ERL=(-noinput -pa "$EBIN" -kernel logger_level warning)

# start_beam NAME MNESIA_DIR ERL_ARGS... : a beam in the background; its stdout goes to
# $SCRATCH/NAME.out (RESULT lines are picked from there), its stderr to ours.
LAST_PID=""
start_beam() {
  local name=$1 dir=$2
  shift 2
  # The dir is handed to Erlang inside a quoted string term.
  if [[ "$dir" == *[\"\\]* ]]; then log "path '$dir' cannot be passed to Erlang"; exit 1; fi
  mkdir -p "$dir" || exit 1
  erl "${COMMON_ERL[@]}" -mnesia dir "\"$dir\"" "$@" \
    >"$SCRATCH/$name.out" </dev/null &
  LAST_PID=$!
  STARTED_PIDS+=("$LAST_PID")
}

# Mnesia logs a three-line warning report each time it finds itself overloaded (with
# default settings its log dumper falls behind under 16 writers); one count per reason
# says the same without burying the progress lines.
collapse_overload_warnings() {
  awk '
    /^=WARNING REPORT====/ { if (held != "") print held; held = $0; next }
    /Mnesia is overloaded: / {
      reason = $0; sub(/.*Mnesia is overloaded: /, "", reason); count[reason]++
      held = ""; skip_blank = 1; next
    }
    {
      if (held != "") { print held; held = "" }
      if (skip_blank && $0 == "") { skip_blank = 0; next }
      skip_blank = 0; print
    }
    END {
      if (held != "") print held
      for (r in count) printf "Mnesia reported itself overloaded %d times: %s\n", count[r], r
    }'
}

# wait_beam NAME PID : bounded wait for a beam started with start_beam; moves its RESULT
# lines to $RESULTS and everything else it printed to stderr; fails unless it exited 0.
wait_beam() {
  local name=$1 pid=$2 rc
  while is_our_child "$pid" && is_alive "$pid"; do
    check_deadline
    sleep 0.1
  done
  wait "$pid"
  rc=$?
  forget_pid "$pid"
  grep -v '^RESULT ' "$SCRATCH/$name.out" | collapse_overload_warnings >&2
  if [ $rc -ne 0 ]; then
    log "$CURRENT_STEP: beam '$name' exited with status $rc"
    exit 1
  fi
  grep '^RESULT ' "$SCRATCH/$name.out" >>"$RESULTS"
}

# run_local_step NAME MNESIA_DIR STEP KEY=VALUE... : one non-distributed beam, to completion.
run_local_step() {
  local name=$1 dir=$2 step=$3
  shift 3
  CURRENT_STEP="$name"
  start_beam "$name" "$dir" -run mnesia_bench main "$step" "$@"
  wait_beam "$name" "$LAST_PID"
}

# ---------------------------------------------------------------- distribution
start_epmd() {
  local attempt port pid i
  CURRENT_STEP="epmd"
  for ((attempt = 0; attempt < 20; attempt++)); do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 30000))
    ERL_EPMD_ADDRESS=127.0.0.1 epmd -port "$port" >"$SCRATCH/epmd.log" 2>&1 </dev/null &
    pid=$!
    STARTED_PIDS+=("$pid")
    for ((i = 0; i < 30; i++)); do
      # An epmd that cannot bind its port exits; one that answers and stays alive is ours.
      is_alive "$pid" || break
      if epmd -port "$port" -names >/dev/null 2>&1; then
        sleep 0.2
        if is_alive "$pid"; then
          export ERL_EPMD_PORT=$port ERL_EPMD_ADDRESS=127.0.0.1
          log "epmd PID $pid on 127.0.0.1:$port"
          return 0
        fi
        break
      fi
      sleep 0.1
    done
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    forget_pid "$pid"
  done
  log "could not start a private epmd on a free port"
  exit 1
}

readonly COOKIE="mishka_mnesia_${$}_${RANDOM}${RANDOM}"
readonly NODE_PREFIX="mnb${$}"
DIST_ERL=(-setcookie "$COOKIE" -start_epmd false -kernel inet_dist_use_interface "{127,0,0,1}")

# start_node SUFFIX : an idle distributed beam NODE_PREFIX_SUFFIX@127.0.0.1 with an empty
# mnesia dir; the controller drives it by rpc.
start_node() {
  local name="${NODE_PREFIX}_$1"
  start_beam "$1" "$SCRATCH/$1" -name "$name@127.0.0.1" "${DIST_ERL[@]}"
  log "node $name@127.0.0.1 PID $LAST_PID"
}

# run_controller STEP KEY=VALUE... : a hidden distributed beam that runs STEP to completion.
run_controller() {
  local step=$1
  shift
  CURRENT_STEP="$step"
  start_beam ctl "$SCRATCH/ctl" -name "${NODE_PREFIX}_ctl@127.0.0.1" -hidden "${DIST_ERL[@]}" \
    -run mnesia_bench main "$step" "$@"
  wait_beam ctl "$LAST_PID"
}

node_names() {
  local out="" s
  for s in "$@"; do out+="${out:+,}${NODE_PREFIX}_$s@127.0.0.1"; done
  echo "$out"
}

# ---------------------------------------------------------------- groups
WINDOW_OPTS=("run=$RUN" "seconds=$SECONDS_OPT" "warmup_ms=$WARMUP_MS")

# A data set is complete when its marker holds exactly this line (written by the beam
# that built it, after Mnesia stopped cleanly).
dataset_ready() {
  [ "$(cat "$2" 2>/dev/null)" = "mnesia_bench data set rows=$1 value_bytes=100" ]
}

group_n1_boot() {
  local base=${DATA_DIR:-$SCRATCH/data}
  mkdir -p "$base" || exit 1
  base=$(cd "$base" && pwd)
  if ! dataset_ready 1000000 "$base/mnesia_boot_1m.complete"; then
    # Building 1M rows may take minutes on a busy machine: a longer cap for this run.
    CAP_S=$((CAP_S + 300))
    DEADLINE=$((START_EPOCH + CAP_S))
    log "the 1m data set must be built first: cap raised to ${CAP_S} s"
  fi
  local rows label dir marker
  for rows in 100000 1000000; do
    case $rows in 100000) label=100k ;; 1000000) label=1m ;; esac
    dir="$base/mnesia_boot_$label"
    marker="$base/mnesia_boot_$label.complete"
    if ! dataset_ready "$rows" "$marker"; then
      log "building the $label data set in $dir (once per --data dir)"
      rm -rf "$dir" "$marker"
      run_local_step "build_$label" "$dir" boot_build "rows=$rows" "marker=$marker"
    fi
    log "booting Mnesia on the $label data set"
    run_local_step "boot_$label" "$dir" boot_measure "rows=$rows" "figure=n1_boot_$label" \
      "run=$RUN"
  done
}

group_n3() {
  local step=$1
  start_epmd
  local suffixes=(n1 n2 n3)
  [ "$step" = n3_join ] && suffixes+=(n4)
  local s
  for s in "${suffixes[@]}"; do start_node "$s"; done
  if [ "$step" = n3_join ]; then
    run_controller n3_join "run=$RUN" "nodes=$(node_names n1 n2 n3)" "joiner=$(node_names n4)"
  else
    run_controller n3_commits "${WINDOW_OPTS[@]}" "nodes=$(node_names n1 n2 n3)"
  fi
}

log "start (cap ${CAP_S} s, scratch $SCRATCH)"
case "$GROUP" in
  n1_commits) run_local_step n1_commits "$SCRATCH/mnesia" n1_commits "${WINDOW_OPTS[@]}" ;;
  n1_reads) run_local_step n1_reads "$SCRATCH/mnesia" n1_reads "${WINDOW_OPTS[@]}" ;;
  n1_boot) group_n1_boot ;;
  n3_commits | n3_join) group_n3 "$GROUP" ;;
esac

CURRENT_STEP="shutdown"
stop_all
cat "$RESULTS"
