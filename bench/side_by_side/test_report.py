"""Unit test of report.py's parsing, statistics, ratios and goal verdicts (canned input).

Run from bench/side_by_side:  python3 -m unittest test_report
or from the repository root:  python3 -m unittest discover -s bench/side_by_side -p 'test_*.py'
It needs neither matplotlib nor any runner, and takes a few milliseconds.
"""

import json
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402


def result(figure, system, run, value, unit="per_s", **extra):
    tail = "".join(f" {k}={v}" for k, v in extra.items())
    return f"RESULT figure={figure} system={system} run={run} value={value} unit={unit}{tail}"


def invocation(group, system, run, status="ok", **extra):
    record = {"group": group, "system": system, "run": run, "status": status, **extra}
    return "# invocation " + json.dumps(record)


# Three rounds. mnesia is missing from n3_commits entirely (a missing system); etcd's round 2
# of n1_commits failed (a failed run: no RESULT lines, an invocation record with its stderr).
CANNED = "\n".join([
    "# date: 2026-11-27",
    "# runs: 3",
    "# cpu: Test CPU",
    result("disk_fsync", "disk", 1, 6000, p50_ms=0.14, p99_ms=0.35),
    invocation("fsync", "disk", 1, load_before="1.00 1.00 1.00", load_after="2.00 1.00 1.00"),
    # n1_commit_w16: mishka 3000/6000/4000 -> median 4000, spread (6000-3000)/4000 = 0.75.
    result("n1_commit_w16", "mishka", 1, 3000, p50_ms=5, p99_ms=20),
    result("n1_commit_w16", "mishka", 2, 6000, p50_ms=3, p99_ms=10),
    result("n1_commit_w16", "mishka", 3, 4000, p50_ms=4, p99_ms=15),
    # etcd: 1000 and 2000 (round 2 failed) -> median 1500; ratio of medians 4000/1500.
    result("n1_commit_w16", "etcd", 1, 1000),
    result("n1_commit_w16", "etcd", 3, 2000),
    invocation("n1_commits", "etcd", 2, "failed", rc=3, reason="exit status 3",
               stderr_tail=["connecting", "etcd did not start within 10 s"]),
    result("n1_commit_w16", "mnesia_sync", 1, 500),
    result("n1_commit_w16", "mnesia_sync", 2, 1000),
    result("n1_commit_w16", "mnesia_sync", 3, 800),
    # 1 writer: mishka p50 1.0 ms, etcd 0.75 ms -> oriented 0.75, needed 1/1.2 = 0.833: missed.
    result("n1_commit_w1", "mishka", 1, 900, p50_ms=1.0, p99_ms=5),
    result("n1_commit_w1", "etcd", 1, 1200, p50_ms=0.75, p99_ms=4),
    # Reads: totals of 2 threads; per thread ratio = total ratio when both used 2 threads.
    result("n1_read_t2", "mishka", 1, 8000000, threads=2),
    result("n1_read_t2", "mnesia", 1, 1000000, threads=2),
    # Boot in seconds: mishka 2 s, mnesia 1 s -> oriented anchor/mishka = 0.5: missed (needs 1).
    result("n1_boot_1m", "mishka", 1, 2.0, unit="s"),
    result("n1_boot_1m", "mnesia", 1, 1.0, unit="s"),
    # n3 commits: mnesia missing entirely.
    result("n3_commit_w16", "mishka", 1, 2500),
    result("n3_commit_w16", "etcd", 1, 2000),
    # Join: mishka 1.5 / 8.0 / 2.0 s (one stall); mnesia 0.2 s; etcd one run over 5 s.
    result("n3_join_100k", "mishka", 1, 1.5, unit="s"),
    result("n3_join_100k", "mishka", 2, 8.0, unit="s"),
    result("n3_join_100k", "mishka", 3, 2.0, unit="s"),
    result("n3_join_100k", "mnesia", 1, 0.2, unit="s"),
    result("n3_join_100k", "etcd", 1, 1.1, unit="s"),
    result("n3_join_100k", "etcd", 2, 7.2, unit="s"),
    "RESULT figure=broken system=mishka",
    "# end: 2026-11-27 12:00:00 UTC",
])


class ParseTest(unittest.TestCase):
    def setUp(self):
        self.raw = report.parse_raw(CANNED)
        self.stats = report.summarize(self.raw.measurements)

    def test_header_invocations_and_problems(self):
        self.assertEqual(self.raw.header["date"], "2026-11-27")
        self.assertEqual(self.raw.header["end"], "2026-11-27 12:00:00 UTC")
        self.assertEqual(len(self.raw.invocations), 2)
        failed = report.failed_invocations(self.raw)
        self.assertEqual([(i.group, i.system, i.run, i.rc) for i in failed],
                         [("n1_commits", "etcd", 2, 3)])
        self.assertEqual(failed[0].stderr_tail[-1], "etcd did not start within 10 s")
        self.assertEqual(len(self.raw.problems), 1)
        self.assertIn("missing run, value, unit", self.raw.problems[0])

    def test_optional_fields(self):
        m = report.parse_result_line(result("x", "mishka", 2, 1.5, p50_ms=0.5, threads=2,
                                            note="a_b"))
        self.assertEqual((m.run, m.value, m.p50_ms, m.p99_ms, m.threads, m.note),
                         (2, 1.5, 0.5, None, 2, "a_b"))
        with self.assertRaises(ValueError):
            report.parse_result_line(result("x", "mishka", 1, 1, unit="ops"))
        with self.assertRaises(ValueError):
            report.parse_result_line("RESULT figure=x system=y run=1 value=abc unit=s")

    def test_median_min_max_spread(self):
        s = self.stats[("n1_commit_w16", "mishka")]
        self.assertEqual((s.median, s.min, s.max), (4000, 3000, 6000))
        self.assertAlmostEqual(s.spread, 0.75)
        self.assertEqual(s.median_of("p50_ms"), 4)
        etcd = self.stats[("n1_commit_w16", "etcd")]
        self.assertEqual(sorted(etcd.runs), [1, 3])  # round 2 failed
        self.assertEqual(etcd.median, 1500)
        self.assertIsNone(self.stats[("n1_boot_1m", "mishka")].spread)  # a single run

    def test_repeated_run_is_reported(self):
        problems = []
        report.summarize([report.parse_result_line(result("f", "mishka", 1, 1)),
                          report.parse_result_line(result("f", "mishka", 1, 2))], problems)
        self.assertEqual(len(problems), 1)


class RatioTest(unittest.TestCase):
    def setUp(self):
        self.stats = report.summarize(report.parse_raw(CANNED).measurements)

    def test_rate_is_mishka_over_anchor(self):
        r = report.ratio(self.stats, "n1_commit_w16", "etcd")
        self.assertAlmostEqual(r.of_medians, 4000 / 1500)
        self.assertEqual(r.paired, {1: 3.0, 3: 2.0})  # round 2 has no etcd side
        self.assertAlmostEqual(r.paired_median, 2.5)

    def test_seconds_and_latency_are_anchor_over_mishka(self):
        self.assertAlmostEqual(report.ratio(self.stats, "n1_boot_1m", "mnesia").of_medians, 0.5)
        p50 = report.ratio(self.stats, "n1_commit_w1", "etcd", "p50")
        self.assertAlmostEqual(p50.of_medians, 0.75)
        # The rate of the same figure goes the other way round.
        self.assertAlmostEqual(report.ratio(self.stats, "n1_commit_w1", "etcd").of_medians, 0.75)

    def test_missing_anchor_is_none(self):
        r = report.ratio(self.stats, "n3_commit_w16", "mnesia_transaction")
        self.assertIsNone(r.of_medians)
        self.assertIsNone(r.paired_median)


class GoalTest(unittest.TestCase):
    def setUp(self):
        stats = report.summarize(report.parse_raw(CANNED).measurements)
        self.goals = {(g.figure, g.anchor): g for g in report.evaluate_goals(stats)}
        self.stats = stats

    def test_verdicts(self):
        self.assertEqual(self.goals[("n1_commit_w16", "mnesia_sync")].verdict, "met")  # 5.0
        self.assertEqual(self.goals[("n1_commit_w16", "etcd")].verdict, "missed")  # 2.67 < 3
        self.assertEqual(self.goals[("n1_commit_w1", "etcd")].verdict, "missed")  # 0.75 < 0.83
        self.assertEqual(self.goals[("n1_read_t2", "mnesia")].verdict, "missed")  # 8x < 10x
        self.assertEqual(self.goals[("n1_boot_1m", "mnesia")].verdict, "missed")
        join = self.goals[("n3_join_100k", "mnesia")]
        self.assertAlmostEqual(join.measured, 0.1)  # 0.2 s / 2.0 s
        self.assertEqual(join.verdict, "missed")
        self.assertAlmostEqual(join.score, 0.2)

    def test_exact_goal_is_met(self):
        self.assertAlmostEqual(self.goals[("n1_commit_w16", "mnesia_sync")].measured, 5.0)
        self.assertAlmostEqual(self.goals[("n1_commit_w16", "mnesia_sync")].score, 1.0)

    def test_missing_system_is_not_available(self):
        g = self.goals[("n3_commit_w16", "mnesia_transaction")]
        self.assertEqual(g.verdict, "n/a")
        self.assertIsNone(g.score)
        self.assertIn("mnesia_transaction", g.detail)
        self.assertEqual(self.goals[("n1_read_t1", "mnesia")].verdict, "n/a")

    def test_stall_and_slow_joins(self):
        stall = self.goals[("n3_join_100k", "")]
        self.assertEqual(stall.verdict, "missed")
        self.assertIn("1 of 3 runs over 7 s", stall.detail)
        self.assertEqual(report.slow_joins(self.stats), [("mishka", 1, 3), ("etcd", 1, 2)])

    def test_paired_disagreement_is_noted(self):
        # Medians 2000/1000 = 2.0 meets 2x, but the only paired round says 1.5.
        raw = report.parse_raw("\n".join([
            result("n3_commit_w16", "mishka", 1, 1500), result("n3_commit_w16", "mishka", 2, 2000),
            result("n3_commit_w16", "mishka", 3, 2500),
            result("n3_commit_w16", "mnesia_transaction", 1, 1000),
        ]))
        goals = report.evaluate_goals(report.summarize(raw.measurements))
        g = next(g for g in goals if g.anchor == "mnesia_transaction")
        self.assertEqual(g.verdict, "met")
        self.assertIn("paired runs say missed", g.detail)


class MarkdownTest(unittest.TestCase):
    def test_renders_without_crash_and_names_failures(self):
        raw = report.parse_raw(CANNED)
        text = report.render_markdown(raw, "2026-11-27")
        self.assertIn("n1_commits / etcd / run 2: failed", text)
        self.assertIn("etcd did not start within 10 s", text)
        self.assertIn(">1: mishka better", text)
        self.assertIn("| 3 nodes, 16 writers: commits/s >= 2x Mnesia transaction | n3_commit_w16 "
                      "| mnesia_transaction | >= 2.00 | n/a | n/a | n/a", text)
        self.assertIn("4,000/s", text)

    def test_empty_input(self):
        text = report.render_markdown(report.parse_raw(""), "empty")
        self.assertIn("n/a", text)

    def test_pick_stem(self):
        with tempfile.TemporaryDirectory() as d:
            out = Path(d)
            self.assertEqual(report.pick_stem(out, "2026-11-27"), "2026-11-27")
            (out / "2026-11-27.md").write_text("x")
            (out / "2026-11-27-2.raw.txt").write_text("x")
            self.assertEqual(report.pick_stem(out, "2026-11-27"), "2026-11-27-3")

    def test_invocation_round_trip(self):
        inv = report.Invocation("n3_join", "mnesia", 2, "timeout", reason="r", rc=-9,
                                stderr_tail=["a", "b"])
        self.assertEqual(report.invocation_from_json(report.invocation_to_json(inv)), inv)


if __name__ == "__main__":
    unittest.main()
