#!/usr/bin/env python3
"""Runs the side-by-side benchmark (issue 7): every group, every system, N rounds, alternating.

For round r in 1..N, for each group in order, it runs each system's runner once (mishka, then
etcd, then Mnesia), so each system's round r sees about the same machine. One runner invocation
measures one round of one group (the interface is /tmp/mishka-compare-spec.md, as agreed for the
runners): the C++ `compare_bench` for mishka, raw etcd and the disk, `mnesia_runner.sh` for
Mnesia. Each invocation has a hard timeout here as well as its own; on expiry its whole process
group is killed (it was started in a new session) and the failure is recorded. A failure is
reported, never hidden, and the other invocations still run.

Writes, as it goes, `<out>/<stem>.raw.txt` (machine header as `#` lines, one `# invocation` record
per invocation, the RESULT lines) and `<out>/<stem>.log` (every runner's stderr); at the end
report.py turns the raw file into `<stem>.md`, `<stem>.png` and `latest.md`. Normally started by
bench/compare, which installs and builds first.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402  (the sibling module; this script is run by path)

REPO = Path(__file__).resolve().parents[2]
WARMUP_S = 0.5
KILL_GRACE_S = 5.0  # between SIGTERM and SIGKILL of a runner's process group
STDERR_TAIL_LINES = 15


# ----------------------------------------------------------------------------------------------
# What runs, and how long it should take


@dataclass(frozen=True)
class Step:
    run: int
    group: str
    system: str  # the runner's system: disk, mishka, etcd or mnesia


def systems_of(group: str, run: int = 1) -> list[str]:
    """The group's systems in the order of this run: rotated from run to run, so that a drift of
    the machine (write-back, another program) does not always land on the same system."""
    if group == "fsync":
        return ["disk"]
    order = ["mishka", "etcd", "mnesia"]
    shift = (run - 1) % len(order)
    return order[shift:] + order[:shift]


def plan(runs: int, groups: list[str]) -> list[Step]:
    return [Step(r, g, s) for r in range(1, runs + 1) for g in groups for s in systems_of(g, r)]


def estimate_s(step: Step, seconds: float) -> float:
    """A rough guess of one invocation's wall time, for the projection and the timeout: measured
    windows plus the setup around them (processes, preloads)."""
    window = seconds + WARMUP_S
    mnesia = step.system == "mnesia"
    if step.group == "fsync":
        return max(3.0, seconds) + 2
    if step.group in ("n1_commits", "n3_commits"):
        windows = 4 if mnesia else 2  # Mnesia measures transaction and sync_transaction
        setup = 5 if mnesia else (8 if step.group == "n1_commits" else 15)
        return windows * window + setup
    if step.group == "n1_reads":
        return 2 * window + (8 if mnesia else 15)
    if step.group == "n1_boot":
        # The first round builds the 100k and 1M data sets (kept in --data for later rounds).
        if step.run == 1:
            return {"mishka": 240.0, "etcd": 120.0}.get(step.system, 60.0)
        return {"mishka": 20.0, "etcd": 12.0}.get(step.system, 8.0)
    if step.group == "n3_join":
        return 15.0 if mnesia else 30.0
    return 60.0


def timeout_s(step: Step, seconds: float, scale: float) -> float:
    """The hard limit of one invocation: a backstop behind the runner's own cap (compare_bench:
    300 s, 900 s while it builds a data set; mnesia_runner.sh: about 340 s, plus 300 s per data
    set it builds), so that it fires only when a runner fails to bound itself."""
    base = 1800.0 if (step.group == "n1_boot" and step.run == 1) else 480.0
    return scale * (base + 2 * estimate_s(step, seconds))


def fmt_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


# ----------------------------------------------------------------------------------------------
# The machine


def command_output(argv: list[str], timeout: float = 15.0) -> str:
    """First non-empty line of a command's stdout, or 'unknown (why)'."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unknown ({argv[0]}: {error})"
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        return f"unknown ({' '.join(argv)} exited {done.returncode})"
    return lines[0]


def read_loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError as error:
        return f"unknown ({error})"


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unknown (lscpu: {error})"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown (no Model name in lscpu)"


def memory_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError) as error:
        return f"unknown ({error})"
    return "unknown"


def os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError as error:
        return f"unknown ({error})"
    return "unknown"


def cmake_cache(build: Path, key: str) -> Optional[str]:
    try:
        for line in (build / "CMakeCache.txt").read_text().splitlines():
            if line.startswith(key + ":"):
                return line.split("=", 1)[1]
    except OSError:
        return None
    return None


def machine_header(build: Path, etcd: str) -> dict[str, str]:
    compiler = cmake_cache(build, "CMAKE_CXX_COMPILER")
    git = command_output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = command_output(["git", "-C", str(REPO), "status", "--porcelain",
                            "--untracked-files=no"])
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model(),
        "memory": memory_total(),
        "os": os_name(),
        "kernel": command_output(["uname", "-r"]),
        "etcd": command_output([etcd, "--version"]),
        "otp": command_output(["erl", "-noshell", "-eval",
                               'io:format("~s~n", [erlang:system_info(otp_release)]), halt().']),
        "compiler": command_output([compiler, "--version"]) if compiler else
        f"unknown (no CMAKE_CXX_COMPILER in {build}/CMakeCache.txt)",
        "build_type": cmake_cache(build, "CMAKE_BUILD_TYPE") or "unknown",
        "git": git + (" (with uncommitted changes)" if dirty and not dirty.startswith("unknown")
                      else ""),
    }


# ----------------------------------------------------------------------------------------------
# Running one invocation


@dataclass
class Runners:
    compare_bench: Path
    mnesia_runner: Path

    def argv(self, step: Step, seconds: float, data: Optional[Path]) -> list[str]:
        tail = ["--run", str(step.run), "--seconds", f"{seconds:g}"]
        if data is not None:
            tail += ["--data", str(data)]
        if step.system == "mnesia":
            return ["bash", str(self.mnesia_runner), step.group] + tail
        return [str(self.compare_bench), step.group, "--system", step.system] + tail

    def path_of(self, step: Step) -> Path:
        return self.mnesia_runner if step.system == "mnesia" else self.compare_bench


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or the id now names someone else's
        return False
    return True


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the runner's process group (its id is the runner's pid: it was started in a
    new session), then SIGKILL if anything of it is left after KILL_GRACE_S."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        deadline = time.monotonic() + KILL_GRACE_S
        while time.monotonic() < deadline:
            process.poll()
            if process.returncode is not None and not group_alive(process.pid):
                return
            time.sleep(0.05)
    process.wait()


def collect_after_kill(process: subprocess.Popen, inv: report.Invocation) -> tuple[str, str]:
    """The rest of a killed runner's output; a process outside its group that still holds the
    pipes must not make us wait forever."""
    try:
        return process.communicate(timeout=KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        inv.reason += "; its output pipes stayed open (a process outside its group?)"
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        process.wait()
        return "", ""


def tail_lines(text: str, n: int = STDERR_TAIL_LINES) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip()][-n:]


def run_step(step: Step, argv: list[str], limit: float, log: TextIO,
             cwd: Path) -> tuple[report.Invocation, list[str]]:
    """Runs one invocation; returns its record and the RESULT lines it printed."""
    inv = report.Invocation(step.group, step.system, step.run, "ok", load_before=read_loadavg())
    log.write(f"\n===== {time.strftime('%H:%M:%S')} run {step.run} {step.group} {step.system}: "
              f"{shlex.join(argv)} (timeout {limit:.0f} s)\n")
    log.flush()
    started = time.monotonic()
    stdout, stderr = "", ""
    try:
        process = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
    except OSError as error:
        inv.status, inv.reason = "error", f"could not start {argv[0]}: {error}"
    else:
        try:
            stdout, stderr = process.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            inv.status = "timeout"
            exited = process.poll()
            inv.reason = (f"no exit within {limit:.0f} s" if exited is None else
                          f"exited {exited} but processes it started held its output open for "
                          f"{limit:.0f} s") + "; its process group was killed"
            stop_group(process)
            stdout, stderr = collect_after_kill(process, inv)
        except BaseException:
            # Ctrl-C, SIGTERM or anything else: never leave the runner and its etcds behind.
            stop_group(process)
            raise
        inv.rc = process.returncode
        if inv.status == "ok" and inv.rc != 0:
            inv.status, inv.reason = "failed", f"exit status {inv.rc}"
        # The runner must stop what it started; whatever of its group is still running is a bug
        # of the runner: stop it here and say so.
        if group_alive(process.pid):
            stop_group(process)
            stderr += ("[orchestrate] processes of the runner's group were still running after "
                       "it exited; killed them\n")
    inv.seconds = round(time.monotonic() - started, 2)
    inv.load_after = read_loadavg()
    log.write(stderr)
    results, stray = [], []
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            try:
                report.parse_result_line(line)
                results.append(line.strip())
            except ValueError as error:
                stray.append(f"bad RESULT line ({error}): {line}")
        elif line.strip():
            stray.append(f"stdout (not a RESULT line): {line}")
    if stray:
        log.write("".join(f"[orchestrate] {s}\n" for s in stray))
    log.write(f"===== exit {inv.rc}, {inv.seconds} s, {len(results)} RESULT line(s)\n")
    log.flush()
    inv.results = len(results)
    inv.stderr_tail = (tail_lines(stderr) + [f"[orchestrate] {s}" for s in stray])[
        -STDERR_TAIL_LINES:]
    return inv, results


# ----------------------------------------------------------------------------------------------
# The whole run


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds (3)")
    parser.add_argument("--seconds", type=int, default=5, help="measured window, whole seconds (5)")
    parser.add_argument("--groups", default=",".join(report.GROUP_NAMES),
                        help="comma-separated groups, run in the standard order (all)")
    parser.add_argument("--quick", action="store_true", help="1 round, 2 s windows: a smoke test")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--build", type=Path,
                        default=REPO / os.environ.get("MISHKA_BENCH_BUILD", "build-bench"))
    parser.add_argument("--compare-bench", type=Path,
                        help="the C++ runner (default: <build>/bench/compare_bench)")
    parser.add_argument("--mnesia-runner", type=Path,
                        default=REPO / "bench" / "side_by_side" / "mnesia_runner.sh")
    parser.add_argument("--data-dir", type=Path,
                        help="keep the n1_boot data sets here (reused by later runs, not removed); "
                        "default: a scratch directory removed at the end")
    parser.add_argument("--timeout-scale", type=float, default=1.0,
                        help="multiplies every invocation's hard timeout")
    parser.add_argument("--command", help="the command line to record (bench/compare passes it)")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.seconds = 1, 2
    if args.runs < 1 or args.seconds <= 0 or args.timeout_scale <= 0:
        parser.error("--runs, --seconds and --timeout-scale must be positive")
    groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    unknown = [g for g in groups if g not in report.GROUP_NAMES]
    if unknown or not groups:
        parser.error(f"unknown group(s) {', '.join(unknown) or '(none given)'}; known: "
                     f"{', '.join(report.GROUP_NAMES)}")
    args.groups = [g for g in report.GROUP_NAMES if g in groups]  # the standard order
    if args.compare_bench is None:
        args.compare_bench = args.build / "bench" / "compare_bench"
    return args


def utc_now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


def raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    # SIGTERM (a `timeout` around us, a closed session) ends the run like Ctrl-C: the running
    # runner's group is stopped and the report is written with what was measured.
    signal.signal(signal.SIGTERM, raise_interrupt)
    signal.signal(signal.SIGHUP, raise_interrupt)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    date = time.strftime("%Y-%m-%d", time.gmtime())
    stem = report.pick_stem(out, date)
    raw_path, log_path = out / f"{stem}.raw.txt", out / f"{stem}.log"
    runners = Runners(args.compare_bench.resolve(), args.mnesia_runner.resolve())
    steps = plan(args.runs, args.groups)

    for path in sorted({runners.path_of(s) for s in steps}):
        if not path.exists():
            print(f"compare: WARNING: runner {path} does not exist; its invocations will fail "
                  "and be reported", file=sys.stderr)

    etcd = os.environ.get("MISHKA_ETCD", "/usr/bin/etcd")
    header = {
        "date": date,
        "start": utc_now(),
        "command": args.command or shlex.join([sys.argv[0]] + (argv or sys.argv[1:])),
        "runs": str(args.runs),
        "seconds": f"{args.seconds:g}",
        "groups": ",".join(args.groups),
        **machine_header(args.build, etcd),
        "load_start": read_loadavg(),
    }
    raw = report.RawResults(header=dict(header))

    projected = sum(estimate_s(s, args.seconds) for s in steps)
    print(f"compare: {len(steps)} invocations ({args.runs} round(s) of "
          f"{', '.join(args.groups)}; {args.seconds:g} s windows); projected about "
          f"{fmt_duration(projected)} (a rough guess; the first n1_boot round builds the data "
          "sets)", flush=True)
    print(f"compare: raw results in {raw_path}, runner stderr in {log_path}", flush=True)

    scratch = None
    if args.data_dir is not None:
        data_root = args.data_dir.resolve()
        data_root.mkdir(parents=True, exist_ok=True)
    else:
        scratch = Path(tempfile.mkdtemp(prefix="mishka-compare-data-"))
        data_root = scratch

    started = time.monotonic()
    remaining = projected
    interrupted = False
    try:
        with raw_path.open("w") as raw_file, log_path.open("w") as log:
            raw_file.write("# mishka bench/compare raw results (bench/side_by_side/report.py "
                           "regenerates the report from this file)\n")
            for key, value in header.items():
                raw_file.write(f"# {key}: {value}\n")
            raw_file.flush()
            for index, step in enumerate(steps, start=1):
                data = None
                if step.group == "n1_boot":
                    data = data_root / f"n1_boot-{step.system}"
                    data.mkdir(parents=True, exist_ok=True)
                argv = runners.argv(step, args.seconds, data)
                limit = timeout_s(step, args.seconds, args.timeout_scale)
                print(f"[{index}/{len(steps)}] round {step.run}/{args.runs} {step.group} "
                      f"{step.system} ... ", end="", flush=True)
                if not runners.path_of(step).exists():
                    inv = report.Invocation(step.group, step.system, step.run, "error",
                                            reason=f"runner {runners.path_of(step)} not found",
                                            load_before=read_loadavg(),
                                            load_after=read_loadavg())
                    results: list[str] = []
                    log.write(f"\n===== run {step.run} {step.group} {step.system}: "
                              f"{inv.reason}\n")
                else:
                    try:
                        inv, results = run_step(step, argv, limit, log, REPO)
                    except KeyboardInterrupt:
                        interrupted = True
                        print("interrupted", flush=True)
                        break
                for line in results:
                    raw_file.write(line + "\n")
                    raw.measurements.append(report.parse_result_line(line))
                raw_file.write(f"# invocation {report.invocation_to_json(inv)}\n")
                raw_file.flush()
                raw.invocations.append(inv)
                remaining -= estimate_s(step, args.seconds)
                elapsed = time.monotonic() - started
                outcome = "ok" if inv.status == "ok" else f"{inv.status.upper()} ({inv.reason})"
                print(f"{outcome}, {inv.seconds or 0:.1f} s, {len(results)} result(s), load "
                      f"{inv.load_after.split()[0] if inv.load_after else '?'}; elapsed "
                      f"{fmt_duration(elapsed)}, about {fmt_duration(max(remaining, 0))} to go",
                      flush=True)
                if inv.status != "ok":
                    for line in inv.stderr_tail[-5:]:
                        print(f"    | {line}", flush=True)
            end = {"end": utc_now(), "load_end": read_loadavg()}
            if interrupted:
                end["interrupted"] = "yes: the run was stopped before its end"
            for key, value in end.items():
                raw_file.write(f"# {key}: {value}\n")
                raw.header[key] = value
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    md = report.write_report(raw, out, stem)
    failed = report.failed_invocations(raw)
    print(f"compare: done in {fmt_duration(time.monotonic() - started)}; "
          f"{len(failed)} failed invocation(s)" + ("; INTERRUPTED" if interrupted else ""),
          flush=True)
    print(md, flush=True)
    return 130 if interrupted else (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
