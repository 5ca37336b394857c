#!/usr/bin/env python3
"""Turns the raw output of a bench/compare run into the report (issue 7).

Input: a raw file as orchestrate.py writes it: `# key: value` header lines (the machine, the
command, the times), `# invocation {json}` lines (one per runner invocation: its status, load,
the tail of its stderr) and the runners' `RESULT ...` lines (bench/side_by_side spec).
Output: `<stem>.md` (tables per group, ratios, goals, failures), `<stem>.png` (the goal ratios)
and a copy of the markdown as `latest.md`.

Importable (orchestrate.py and test_report.py use the functions) and runnable on a saved file to
regenerate its report:  python3 bench/side_by_side/report.py bench/results/2026-11-27.raw.txt

Every ratio is oriented so that >1 means mishka is better: rates are mishka/anchor, seconds and
latencies anchor/mishka. matplotlib is imported only by the chart function, so the parsing and
the goal maths work (and are tested) without it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

MISHKA = "mishka"

# The groups in the order they run, and the figures each one prints (spec table).
GROUPS: list[tuple[str, list[str]]] = [
    ("fsync", ["disk_fsync"]),
    ("n1_commits", ["n1_commit_w1", "n1_commit_w16"]),
    ("n1_reads", ["n1_read_t1", "n1_read_t2"]),
    ("n1_boot", ["n1_boot_100k", "n1_boot_1m"]),
    ("n3_commits", ["n3_commit_w1", "n3_commit_w16"]),
    ("n3_join", ["n3_join_100k"]),
]
GROUP_NAMES = [name for name, _ in GROUPS]

GROUP_TITLES = {
    "fsync": "The disk: fdatasync rate (the limit for one durable commit at a time)",
    "n1_commits": "One node: commits",
    "n1_reads": "One node: local reads (all threads together)",
    "n1_boot": "One node: start to ready with N records on disk",
    "n3_commits": "Three nodes on loopback: commits",
    "n3_join": "Three nodes: a 4th node joins a cluster holding 100k records",
}

# Which systems each runner prints for each group: a figure missing from a successful
# invocation is reported as a failure too.
MNESIA_COMMIT_SYSTEMS = ["mnesia_transaction", "mnesia_sync"]


def expected_systems(group: str, runner_system: str) -> list[str]:
    """The `system=` values an invocation of `runner_system` for `group` prints."""
    if runner_system == "mnesia" and group in ("n1_commits", "n3_commits"):
        return list(MNESIA_COMMIT_SYSTEMS)
    return [runner_system]


def figures_of(group: str) -> list[str]:
    for name, figures in GROUPS:
        if name == group:
            return list(figures)
    return []


# Display order of the systems inside a figure.
SYSTEM_ORDER = [MISHKA, "etcd", "mnesia_transaction", "mnesia_sync", "mnesia", "disk"]


def system_rank(system: str) -> tuple[int, str]:
    return (SYSTEM_ORDER.index(system) if system in SYSTEM_ORDER else len(SYSTEM_ORDER), system)


# ----------------------------------------------------------------------------------------------
# Parsing


@dataclass
class Measurement:
    figure: str
    system: str
    run: int
    value: float
    unit: str  # "per_s" (higher is better) or "s" (lower is better)
    p50_ms: Optional[float] = None
    p99_ms: Optional[float] = None
    threads: Optional[int] = None
    note: Optional[str] = None


@dataclass
class Invocation:
    """One runner invocation as orchestrate.py recorded it."""

    group: str
    system: str
    run: int
    status: str  # "ok", "failed" (non-zero exit), "timeout", "error" (could not start)
    reason: str = ""
    rc: Optional[int] = None
    seconds: Optional[float] = None
    load_before: str = ""
    load_after: str = ""
    stderr_tail: list[str] = field(default_factory=list)
    results: int = 0  # RESULT lines it printed


@dataclass
class RawResults:
    header: dict[str, str] = field(default_factory=dict)
    measurements: list[Measurement] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # lines that could not be parsed


REQUIRED_KEYS = ("figure", "system", "run", "value", "unit")


def parse_result_line(line: str) -> Measurement:
    """Parses one `RESULT k=v ...` line; raises ValueError naming what is wrong."""
    tokens = line.split()
    if not tokens or tokens[0] != "RESULT":
        raise ValueError("does not start with RESULT")
    fields: dict[str, str] = {}
    for token in tokens[1:]:
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise ValueError(f"token {token!r} is not key=value")
        fields[key] = value
    missing = [k for k in REQUIRED_KEYS if k not in fields]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    if fields["unit"] not in ("per_s", "s"):
        raise ValueError(f"unit {fields['unit']!r} is neither per_s nor s")

    def optional_float(key: str) -> Optional[float]:
        return float(fields[key]) if key in fields else None

    return Measurement(
        figure=fields["figure"],
        system=fields["system"],
        run=int(fields["run"]),
        value=float(fields["value"]),
        unit=fields["unit"],
        p50_ms=optional_float("p50_ms"),
        p99_ms=optional_float("p99_ms"),
        threads=int(fields["threads"]) if "threads" in fields else None,
        note=fields.get("note"),
    )


def invocation_from_json(text: str) -> Invocation:
    data = json.loads(text)
    known = {k: data[k] for k in Invocation.__dataclass_fields__ if k in data}
    return Invocation(**known)


def invocation_to_json(inv: Invocation) -> str:
    return json.dumps(inv.__dict__, separators=(",", ":"))


def parse_raw(text: str) -> RawResults:
    """Parses a raw file. Never raises on bad lines: they are listed in `problems`."""
    raw = RawResults()
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            body = line[1:].strip()
            if body.startswith("invocation "):
                try:
                    raw.invocations.append(invocation_from_json(body[len("invocation "):]))
                except (ValueError, TypeError) as error:
                    raw.problems.append(f"line {number}: bad invocation record ({error})")
            elif ": " in body:
                key, _, value = body.partition(": ")
                raw.header[key.strip()] = value.strip()
            continue
        if line.startswith("RESULT"):
            try:
                raw.measurements.append(parse_result_line(line))
            except ValueError as error:
                raw.problems.append(f"line {number}: {error}: {line}")
            continue
        raw.problems.append(f"line {number}: not a RESULT line: {line}")
    return raw


# ----------------------------------------------------------------------------------------------
# Statistics


@dataclass
class FigureStats:
    figure: str
    system: str
    unit: str
    runs: dict[int, Measurement]

    def values(self) -> list[float]:
        return [m.value for m in self.runs.values()]

    @property
    def median(self) -> float:
        return statistics.median(self.values())

    @property
    def min(self) -> float:
        return min(self.values())

    @property
    def max(self) -> float:
        return max(self.values())

    @property
    def spread(self) -> Optional[float]:
        """(max - min) / median; None with fewer than 2 runs or a median of 0."""
        med = self.median
        return (self.max - self.min) / med if med and len(self.runs) > 1 else None

    def median_of(self, attribute: str) -> Optional[float]:
        present = [getattr(m, attribute) for m in self.runs.values()]
        present = [v for v in present if v is not None]
        return statistics.median(present) if present else None

    @property
    def threads(self) -> Optional[int]:
        present = {m.threads for m in self.runs.values() if m.threads is not None}
        return present.pop() if len(present) == 1 else None


def summarize(measurements: list[Measurement],
              problems: Optional[list[str]] = None) -> dict[tuple[str, str], FigureStats]:
    """Groups the measurements per (figure, system). A repeated (figure, system, run) keeps the
    last one; it and a unit that changes are added to `problems` when given."""
    if problems is None:
        problems = []
    stats: dict[tuple[str, str], FigureStats] = {}
    for m in measurements:
        key = (m.figure, m.system)
        entry = stats.setdefault(key, FigureStats(m.figure, m.system, m.unit, {}))
        if m.unit != entry.unit:
            problems.append(
                f"{m.figure} {m.system} run {m.run}: unit {m.unit} differs from {entry.unit}; "
                "measurement ignored")
            continue
        if m.run in entry.runs:
            problems.append(f"{m.figure} {m.system}: run {m.run} printed twice; kept the last")
        entry.runs[m.run] = m
    return stats


# ----------------------------------------------------------------------------------------------
# Ratios (>1 means mishka is better)

METRICS = ("value", "p50", "per_thread")


def metric_of(m: Measurement, metric: str) -> Optional[float]:
    if metric == "value":
        return m.value
    if metric == "p50":
        return m.p50_ms
    if metric == "per_thread":
        return m.value / m.threads if m.threads else m.value
    raise ValueError(f"unknown metric {metric!r}")


def higher_is_better(unit: str, metric: str) -> bool:
    return metric != "p50" and unit == "per_s"


def oriented(mishka: Optional[float], anchor: Optional[float], better_high: bool):
    """mishka/anchor for rates, anchor/mishka for times: >1 means mishka is better."""
    if mishka is None or anchor is None:
        return None
    numerator, denominator = (mishka, anchor) if better_high else (anchor, mishka)
    return numerator / denominator if denominator > 0 else None


@dataclass
class Ratio:
    figure: str
    anchor: str
    metric: str
    of_medians: Optional[float]
    paired: dict[int, float]  # run -> ratio of that run's mishka and anchor

    @property
    def paired_median(self) -> Optional[float]:
        return statistics.median(self.paired.values()) if self.paired else None


def ratio(stats: dict[tuple[str, str], FigureStats], figure: str, anchor: str,
          metric: str = "value") -> Ratio:
    """The ratio of mishka to `anchor` on `figure`; None parts when either side is missing."""
    ours = stats.get((figure, MISHKA))
    theirs = stats.get((figure, anchor))
    if ours is None or theirs is None:
        return Ratio(figure, anchor, metric, None, {})
    better_high = higher_is_better(ours.unit, metric)

    def median_metric(s: FigureStats) -> Optional[float]:
        present = [metric_of(m, metric) for m in s.runs.values()]
        present = [v for v in present if v is not None]
        return statistics.median(present) if present else None

    of_medians = oriented(median_metric(ours), median_metric(theirs), better_high)
    paired: dict[int, float] = {}
    for run in sorted(set(ours.runs) & set(theirs.runs)):
        r = oriented(metric_of(ours.runs[run], metric), metric_of(theirs.runs[run], metric),
                     better_high)
        if r is not None:
            paired[run] = r
    return Ratio(figure, anchor, metric, of_medians, paired)


def all_ratios(stats: dict[tuple[str, str], FigureStats]) -> list[Ratio]:
    """mishka against every other system of every figure that has a mishka side (values)."""
    figures = sorted({f for f, s in stats if s == MISHKA}, key=figure_rank)
    out = []
    for figure in figures:
        anchors = sorted({s for f, s in stats if f == figure and s != MISHKA}, key=system_rank)
        out += [ratio(stats, figure, anchor) for anchor in anchors]
    return out


def figure_rank(figure: str) -> tuple[int, str]:
    order = [f for _, figures in GROUPS for f in figures]
    return (order.index(figure) if figure in order else len(order), figure)


# ----------------------------------------------------------------------------------------------
# Goals (issue 7)


@dataclass(frozen=True)
class Goal:
    figure: str
    anchor: str
    metric: str
    needed: float  # the oriented ratio (>1 means mishka better) that meets the goal
    text: str
    short: str  # the goal in the issue's own terms, for the chart


GOALS = [
    Goal("n3_commit_w16", "mnesia_transaction", "value", 2.0,
         "3 nodes, 16 writers: commits/s >= 2x Mnesia transaction", ">= 2x its rate"),
    Goal("n3_commit_w16", "etcd", "value", 5.0, "3 nodes, 16 writers: commits/s >= 5x raw etcd",
         ">= 5x its rate"),
    Goal("n1_commit_w16", "etcd", "value", 3.0, "1 node, 16 writers: commits/s >= 3x raw etcd",
         ">= 3x its rate"),
    Goal("n1_commit_w16", "mnesia_sync", "value", 5.0,
         "1 node, 16 writers: commits/s >= 5x Mnesia sync_transaction + sync_log",
         ">= 5x its rate"),
    Goal("n1_commit_w1", "etcd", "p50", 1 / 1.2,
         "1 node, 1 writer: p50 commit latency <= 1.2x raw etcd put", "p50 <= 1.2x its p50"),
    Goal("n1_read_t1", "mnesia", "per_thread", 10.0,
         "local reads, 1 thread: per thread >= 10x Mnesia dirty_read", ">= 10x per thread"),
    Goal("n1_read_t2", "mnesia", "per_thread", 10.0,
         "local reads, 2 threads: per thread >= 10x Mnesia dirty_read", ">= 10x per thread"),
    Goal("n1_boot_1m", "mnesia", "value", 1.0, "start to ready, 1M records: <= Mnesia's time",
         "<= its time"),
    Goal("n3_join_100k", "mnesia", "value", 0.5,
         "4th node joins, 100k records: <= 2x Mnesia's time", "<= 2x its time"),
]

JOIN_FIGURE = "n3_join_100k"
STALL_LIMIT_S = 7.0  # the goal: no mishka join this long (etcd's request timeout)
SLOW_JOIN_S = 5.0  # joins counted as slow, on both sides


@dataclass
class GoalResult:
    text: str
    figure: str
    anchor: str
    needed: Optional[float]  # oriented; None for rows that are not ratios
    measured: Optional[float]  # oriented ratio of the medians
    paired: Optional[float]  # median of the per-run oriented ratios
    verdict: str  # "met", "missed", "n/a"
    detail: str = ""

    @property
    def score(self) -> Optional[float]:
        """measured / needed: 1.0 is exactly the goal."""
        if self.measured is None or not self.needed:
            return None
        return self.measured / self.needed


def evaluate_goals(stats: dict[tuple[str, str], FigureStats]) -> list[GoalResult]:
    results = []
    for goal in GOALS:
        r = ratio(stats, goal.figure, goal.anchor, goal.metric)
        if r.of_medians is None:
            missing = [s for s in (MISHKA, goal.anchor) if (goal.figure, s) not in stats]
            detail = ("no figure for " + " and ".join(missing)) if missing else \
                "no usable value (missing p50 or zero)"
            results.append(GoalResult(goal.text, goal.figure, goal.anchor, goal.needed, None,
                                      None, "n/a", detail))
            continue
        verdict = "met" if r.of_medians >= goal.needed else "missed"
        detail = ""
        pm = r.paired_median
        if pm is not None and (pm >= goal.needed) != (verdict == "met"):
            detail = "the paired runs say " + ("met" if pm >= goal.needed else "missed")
        results.append(GoalResult(goal.text, goal.figure, goal.anchor, goal.needed,
                                  r.of_medians, pm, verdict, detail))
    results.append(stall_goal(stats))
    return results


def stall_goal(stats: dict[tuple[str, str], FigureStats]) -> GoalResult:
    text = f"4th node joins: no mishka join over {STALL_LIMIT_S:g} s"
    ours = stats.get((JOIN_FIGURE, MISHKA))
    if ours is None:
        return GoalResult(text, JOIN_FIGURE, "", None, None, None, "n/a", "no mishka join measured")
    stalled = sorted(run for run, m in ours.runs.items() if m.value > STALL_LIMIT_S)
    detail = f"{len(stalled)} of {len(ours.runs)} runs over {STALL_LIMIT_S:g} s"
    if stalled:
        detail += " (run " + ", ".join(str(r) for r in stalled) + ")"
    return GoalResult(text, JOIN_FIGURE, "", None, None, None, "missed" if stalled else "met",
                      detail)


def slow_joins(stats: dict[tuple[str, str], FigureStats]) -> list[tuple[str, int, int]]:
    """(system, runs over SLOW_JOIN_S, runs) for mishka and etcd joins."""
    out = []
    for system in (MISHKA, "etcd"):
        s = stats.get((JOIN_FIGURE, system))
        if s is not None:
            out.append((system, sum(1 for v in s.values() if v > SLOW_JOIN_S), len(s.runs)))
    return out


def fsync_context(stats: dict[tuple[str, str], FigureStats]) -> list[tuple[str, str, float,
                                                                         Optional[float]]]:
    """(figure, system, commits/s, share of the disk's fsync rate) of every 1-writer figure."""
    disk = stats.get(("disk_fsync", "disk"))
    disk_rate = disk.median if disk is not None else None
    rows = []
    for figure in ("n1_commit_w1", "n3_commit_w1"):
        for (f, system), s in sorted(stats.items(), key=lambda kv: system_rank(kv[0][1])):
            if f == figure:
                rows.append((figure, system, s.median,
                             s.median / disk_rate if disk_rate else None))
    return rows


# ----------------------------------------------------------------------------------------------
# Formatting


def fmt_number(x: Optional[float], digits: int = 3) -> str:
    """Three significant digits, thousands separated: 6,123 / 702 / 45.3 / 0.512."""
    if x is None:
        return "n/a"
    if abs(x) >= 10 ** (digits - 1):
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def fmt_value(x: Optional[float], unit: str) -> str:
    if x is None:
        return "n/a"
    return f"{fmt_number(x)}/s" if unit == "per_s" else f"{fmt_number(x)} s"


def fmt_ratio(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def fmt_percent(x: Optional[float]) -> str:
    return "-" if x is None else f"{x * 100:.0f}%"


def max_run(raw: RawResults) -> int:
    runs = [m.run for m in raw.measurements] + [i.run for i in raw.invocations]
    declared = raw.header.get("runs", "")
    if declared.isdigit():
        runs.append(int(declared))
    return max(runs, default=0)


def load_range(invocations: list[Invocation]) -> str:
    """The 1-minute load averages read around these invocations, as 'min-max'."""
    loads = []
    for inv in invocations:
        for text in (inv.load_before, inv.load_after):
            try:
                loads.append(float(text.split()[0]))
            except (IndexError, ValueError):
                pass
    if not loads:
        return "n/a"
    low, high = min(loads), max(loads)
    return f"{low:.2f}" if low == high else f"{low:.2f}-{high:.2f}"


def group_table(group: str, stats, raw: RawResults, nruns: int) -> list[str]:
    known = figures_of(group)
    rows = [(f, s) for (f, s) in stats if f in known]
    rows.sort(key=lambda fs: (figure_rank(fs[0]), system_rank(fs[1])))
    lines = [f"### {GROUP_TITLES.get(group, group)}", ""]
    group_invocations = [i for i in raw.invocations if i.group == group]
    if group_invocations:
        lines += [f"1-minute load around these runs: {load_range(group_invocations)}.", ""]
    if not rows and not group_invocations:
        lines += ["No figure was measured in this group.", ""]
        return lines
    # A system whose every run of this group failed has no stats: still give it a row.
    for inv in group_invocations:
        for figure in known:
            for system in expected_systems(group, inv.system):
                if (figure, system) not in stats and (figure, system) not in rows:
                    rows.append((figure, system))
    rows.sort(key=lambda fs: (figure_rank(fs[0]), system_rank(fs[1])))
    lines += ["| figure | system | median | runs " +
              " / ".join(str(r) for r in range(1, nruns + 1)) + " | spread | p50 / p99 |",
              "| --- | --- | --- | --- | --- | --- |"]
    for figure, system in rows:
        s = stats.get((figure, system))
        if s is None:
            lines.append(f"| {figure} | {system} | no result (see Failures) | " +
                         " / ".join("-" for _ in range(nruns)) + " | | |")
            continue
        runs = " / ".join(fmt_number(s.runs[r].value) if r in s.runs else "-"
                          for r in range(1, nruns + 1))
        p50, p99 = s.median_of("p50_ms"), s.median_of("p99_ms")
        latency = f"{fmt_number(p50)} / {fmt_number(p99)} ms" if p50 is not None else ""
        threads = f" ({s.threads} threads)" if s.threads and s.threads > 1 else ""
        lines.append(f"| {figure} | {system}{threads} | {fmt_value(s.median, s.unit)} | {runs} | "
                     f"{fmt_percent(s.spread)} | {latency} |")
    lines.append("")
    return lines


def ratio_table(stats) -> list[str]:
    ratios = all_ratios(stats)
    lines = ["## Ratios", "",
             "**Every ratio reads >1 when mishka is better**: rates are mishka / anchor, seconds "
             "and latencies anchor / mishka. *Of medians* divides the two medians; *paired* is the "
             "median of the per-run ratios (each mishka run against the anchor's run of the same "
             "round, which ran right after it).", ""]
    if not ratios:
        return lines + ["No figure has both a mishka and an anchor side.", ""]
    lines += ["| figure | against | of medians (>1: mishka better) | paired (>1: mishka better) "
              "| per run | p50 latency, of medians (>1: mishka faster) |",
              "| --- | --- | --- | --- | --- | --- |"]
    for r in ratios:
        unit = stats[(r.figure, MISHKA)].unit
        measure = "rate" if unit == "per_s" else "seconds"
        per_run = " / ".join(f"{fmt_ratio(v)}" for _, v in sorted(r.paired.items()))
        p50 = ratio(stats, r.figure, r.anchor, "p50").of_medians
        lines.append(f"| {r.figure} | {r.anchor} | {fmt_ratio(r.of_medians)} ({measure}) | "
                     f"{fmt_ratio(r.paired_median)} | {per_run or 'n/a'} | "
                     f"{fmt_ratio(p50) if p50 is not None else ''} |")
    lines.append("")
    return lines


def goals_table(goals: list[GoalResult], stats) -> list[str]:
    lines = ["## Goals (issue 7)", "",
             "Needed and measured are the oriented ratios above (>1: mishka better), so a goal "
             "`mishka <= 1.2x etcd` needs 1/1.2 = 0.83 and `<= 2x Mnesia's time` needs 0.50. The "
             "verdict reads the ratio of the medians; a paired ratio that disagrees is noted.", "",
             "| goal | figure | against | needed | measured | paired | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for g in goals:
        verdict = g.verdict + (f" ({g.detail})" if g.detail else "")
        lines.append(f"| {g.text} | {g.figure} | {g.anchor or '-'} | "
                     f"{'>= ' + fmt_ratio(g.needed) if g.needed else '-'} | "
                     f"{fmt_ratio(g.measured) if g.needed else '-'} | "
                     f"{fmt_ratio(g.paired) if g.needed else '-'} | {verdict} |")
    for system, slow, runs in slow_joins(stats):
        lines.append(f"| context: {system} joins over {SLOW_JOIN_S:g} s | {JOIN_FIGURE} | - | - | "
                     f"- | - | {slow} of {runs} runs |")
    disk = stats.get(("disk_fsync", "disk"))
    if disk is not None:
        lines.append(f"| context: the disk's fdatasync rate (one durable commit at a time cannot "
                     f"beat it) | disk_fsync | - | - | - | - | {fmt_value(disk.median, 'per_s')} |")
        for figure, system, rate, share in fsync_context(stats):
            lines.append(f"| context: {figure} {system} commits/s against the fsync rate | "
                         f"{figure} | disk | - | - | - | {fmt_value(rate, 'per_s')} = "
                         f"{fmt_percent(share)} of it |")
    lines.append("")
    return lines


def failures_section(raw: RawResults, stats, problems: list[str]) -> list[str]:
    lines = ["## Failures", ""]
    entries: list[str] = []
    for inv in raw.invocations:
        label = f"{inv.group} / {inv.system} / run {inv.run}"
        if inv.status != "ok":
            after = f", after {inv.seconds:.1f} s" if inv.seconds is not None else ""
            entries.append(f"- **{label}: {inv.status}** ({inv.reason or 'no reason given'}"
                           f"{after}); figures it would have given: "
                           f"{', '.join(figures_of(inv.group)) or inv.group}.")
            if inv.stderr_tail:
                entries += ["", "  ```"] + [f"  {line}" for line in inv.stderr_tail] + ["  ```"]
        # A missing figure is a failure too, whatever the exit status said.
        missing = [f"{figure} for {system}" for figure in figures_of(inv.group)
                   for system in expected_systems(inv.group, inv.system)
                   if inv.status == "ok" and (inv.run not in getattr(stats.get((figure, system)),
                                                                     "runs", {}))]
        if missing:
            entries.append(f"- **{label}**: exited 0 but printed no {', no '.join(missing)}.")
            if inv.stderr_tail:
                entries += ["", "  ```"] + [f"  {line}" for line in inv.stderr_tail] + ["  ```"]
    for problem in problems:
        entries.append(f"- unparsed output: {problem}")
    if not entries:
        entries = ["None: every invocation exited 0 and printed every figure it should."]
    return lines + entries + [""]


def failed_invocations(raw: RawResults) -> list[Invocation]:
    return [i for i in raw.invocations if i.status != "ok"]


def render_markdown(raw: RawResults, stem: str, chart_note: str = "") -> str:
    problems = list(raw.problems)
    stats = summarize(raw.measurements, problems)
    goals = evaluate_goals(stats)
    h = raw.header
    nruns = max_run(raw)
    lines = [f"# mishka side by side with Mnesia and etcd: {h.get('date', stem)}", ""]
    lines += ["Run by `bench/compare` (issue 7): every figure once per round, the systems "
              "alternating within each round (their order rotating from round to round), so each "
              "system's round r sees about the same machine. A figure is the median of its runs; spread is (max - min) / median.", ""]
    lines += ["| | |", "| --- | --- |"]
    for key in ("date", "start", "end", "command", "runs", "seconds", "groups", "machine",
                "cpu", "nproc", "memory", "os", "kernel", "etcd", "otp", "compiler",
                "build_type", "git", "load_start", "load_end"):
        if key in h:
            lines.append(f"| {key} | {h[key].replace('|', '/')} |")
    lines.append(f"| load during runs (1 min) | {load_range(raw.invocations)} |")
    lines.append("")
    lines += ["Durability: mishka and etcd answer a commit after etcd fdatasynced its log; "
              "Mnesia's `transaction` (mnesia_transaction) does not wait for the disk, and "
              "`sync_transaction` + `sync_log` (mnesia_sync) is what a durable Mnesia user runs.",
              ""]
    if "interrupted" in h:
        lines += ["**The run was interrupted before its end**: the groups and rounds after the "
                  "interruption are missing.", ""]
    failed = failed_invocations(raw)
    if failed:
        lines += [f"**{len(failed)} invocation(s) failed**: see Failures at the end.", ""]
    lines += ["## Figures", ""]
    for group in GROUP_NAMES:
        if any(f in figures_of(group) for f, _ in stats) or \
                any(i.group == group for i in raw.invocations):
            lines += group_table(group, stats, raw, nruns)
    other = sorted({f for f, _ in stats if not any(f in figs for _, figs in GROUPS)})
    if other:
        lines += ["### Other figures", ""]
        for figure in other:
            s_rows = [s for (f, s) in stats if f == figure]
            for system in sorted(s_rows, key=system_rank):
                s = stats[(figure, system)]
                lines.append(f"- {figure} {system}: {fmt_value(s.median, s.unit)}")
        lines.append("")
    lines += ratio_table(stats)
    lines += goals_table(goals, stats)
    if chart_note:
        lines += [chart_note, ""]
    lines += failures_section(raw, stats, problems)
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Chart


def write_chart(goals: list[GoalResult], path: Path, title: str) -> None:
    """A horizontal bar per goal: measured/needed on a log axis, 1.0 being the goal. Raises
    ImportError when matplotlib is missing."""
    import matplotlib  # lazily: the tests and the parsing must not need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    rows = [g for g in goals if g.needed]
    shorts = {(g.figure, g.anchor): g.short for g in GOALS}
    labels = [f"{g.figure} vs {g.anchor}\n{shorts.get((g.figure, g.anchor), '')}" for g in rows]
    scores = [g.score for g in rows]
    present = [s for s in scores if s is not None]
    low = min(present + [1.0]) / 2
    high = max(present + [1.0]) * 7  # room for the value labels right of the bars
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.5), dpi=100)
    positions = list(range(len(rows)))[::-1]
    for y, g, score in zip(positions, rows, scores):
        if score is None:
            ax.text(low * 1.1, y, "n/a: not measured", va="center", fontsize=10, color="gray")
            continue
        color = "#2e7d32" if score >= 1 else "#c62828"
        ax.barh(y, score - low, left=low, color=color, height=0.6)  # a bar from the axis' left
        ax.text(score * 1.08, y, f"{g.measured:.2f}, needs {g.needed:.2f}"
                f" ({'met' if score >= 1 else 'missed'})", va="center", fontsize=10,
                bbox=dict(facecolor="white", edgecolor="none", alpha=0.8, pad=1))
    ax.axvline(1.0, color="black", linewidth=1.2, linestyle="--")
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.set_yticks(positions)
    ax.set_yticklabels(labels, fontsize=10)
    ax.set_xlabel("measured ratio / needed ratio (log scale): 1 is the goal (dashed); right of "
                  "it, met", fontsize=10)
    ax.set_title(title, fontsize=12)
    ax.grid(axis="x", which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------
# Files


def pick_stem(out_dir: Path, date: str) -> str:
    """`date`, or `date-2`, `date-3`... the first one with no report, raw file or chart yet."""
    n = 1
    while True:
        stem = date if n == 1 else f"{date}-{n}"
        if not any((out_dir / f"{stem}{suffix}").exists() for suffix in (".md", ".raw.txt",
                                                                         ".png")):
            return stem
        n += 1


def write_report(raw: RawResults, out_dir: Path, stem: str, latest: bool = True) -> Path:
    """Writes <stem>.md and <stem>.png (and latest.md); returns the markdown's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = summarize(raw.measurements)
    goals = evaluate_goals(stats)
    png = out_dir / f"{stem}.png"
    try:
        write_chart(goals, png, f"mishka against the issue 7 goals, {raw.header.get('date', stem)}")
        chart_note = f"![goal ratios: measured / needed, log scale]({png.name})"
    except Exception as error:  # the report must still be written; the note says why not
        chart_note = f"(The chart was not written: {type(error).__name__}: {error})"
        print(f"report: chart not written: {error}", file=sys.stderr)
    md = out_dir / f"{stem}.md"
    md.write_text(render_markdown(raw, stem, chart_note) + "\n")
    if latest:
        shutil.copyfile(md, out_dir / "latest.md")
    return md


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate a bench/compare report from its raw "
                                     "file (<stem>.raw.txt -> <stem>.md, <stem>.png).")
    parser.add_argument("raw", type=Path, help="a <stem>.raw.txt written by orchestrate.py")
    parser.add_argument("--out", type=Path, help="directory to write into (default: the raw "
                        "file's)")
    parser.add_argument("--no-latest", action="store_true", help="do not overwrite latest.md")
    args = parser.parse_args(argv)
    try:
        text = args.raw.read_text()
    except OSError as error:
        print(f"report: cannot read {args.raw}: {error}", file=sys.stderr)
        return 1
    name = args.raw.name
    stem = name[: -len(".raw.txt")] if name.endswith(".raw.txt") else args.raw.stem
    raw = parse_raw(text)
    md = write_report(raw, args.out or args.raw.parent, stem, latest=not args.no_latest)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
