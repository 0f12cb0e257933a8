"""The suite's A/B cases: repeated runs, interleaved ABBA, labelled by repeat, judged over all their runs."""
from __future__ import annotations

from perfkit.pipeline import run, suite
from perfkit.pipeline.run import CaseResult
from perfkit.pipeline.suite import Case, Comparison, Suite


def test_schedule_interleaves_a_group_abba_and_keeps_other_cases_in_order():
    a = Case("a", {"rate": 1}, repeats=3, interleave="g")
    b = Case("b", {"rate": 1}, repeats=3, interleave="g")
    solo, twice = Case("solo", {"rate": 1}), Case("twice", {"rate": 1}, repeats=2)
    order = [(c.name, i) for c, i in suite.schedule([solo, a, twice, b])]
    assert order == [("solo", 1), ("a", 1), ("b", 1), ("b", 2), ("a", 2), ("a", 3), ("b", 3),
                     ("twice", 1), ("twice", 2)]


def test_repeated_runs_are_labelled_and_comparisons_select_all_of_them():
    a = Case("a", {"rate": 1}, repeats=3, labels="k=v")
    assert suite.run_label("T", a, 2) == "suite=T,case=a,k=v,repeat=2"
    assert suite.run_label("T", Case("b", {"rate": 1}), 1) == "suite=T,case=b"
    s = Suite("t", (a,), (Comparison("ab", "04_ab_compare", {"baseline": "{case:a}", "candidate": "{run:a}"}),))
    results = [CaseResult(a, failed="boom", repeat=1), CaseResult(a, run_id="r2", repeat=2),
               CaseResult(a, run_id="r3", repeat=3)]
    said: list[str] = []
    jobs = run.report_jobs(s, results, "T", say=said.append)
    assert [(j.name, j.parameters) for j in jobs] == [
        ("01_benchmark-a", {"run_id": "r2"}),                  # per-run reports: the case's first run only
        ("ab", {"baseline": "suite=T,case=a", "candidate": "r2"})]
    assert said == []
    assert run.one_line(results[1]).startswith("  a #2: run r2")


def test_default_suite_judges_arms_of_three_interleaved_runs_and_an_a_a_pair():
    cases = {c.name: c for c in suite.DEFAULT_CASES}
    for name in ("batching-dynamic", "batching-fixed", "direct", "proxy", "direct-again"):
        assert cases[name].repeats >= 3 and cases[name].interleave
    reports = {r.name: r.parameters for r in suite.DEFAULT_REPORTS}
    assert reports["04_ab_compare"] == {"baseline": "{case:batching-dynamic}", "candidate": "{case:batching-fixed}"}
    assert reports["04_ab_compare-aa"] == {"baseline": "{case:direct}", "candidate": "{case:direct-again}"}
    assert cases["direct"].bench == cases["direct-again"].bench and cases["direct"].server == cases["direct-again"].server
    # the load of `make report` stays within a few minutes
    assert sum(float(c.bench.get("duration", 0)) * c.repeats for c in suite.DEFAULT_CASES) <= 240
