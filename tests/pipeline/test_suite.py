"""The report suites of the pipeline: flags, placeholders, capability checks, the jobs it renders."""
from __future__ import annotations

import datetime as dt

import pytest

from perfkit.errors import UsageError
from perfkit.pipeline import capabilities, run, suite
from perfkit.pipeline.bench import bench_command
from perfkit.pipeline.run import CaseResult
from perfkit.pipeline.suite import Case, Comparison, Suite
from perfkit.subprocesses import option_flags


def test_bench_flags_follow_the_cli_spelling(tmp_path):
    assert option_flags({"rate": 200, "spike_rps": 600, "quiet": True, "seed": None}) == [
        "--rate", "200", "--spike-rps", "600", "--quiet"]
    cmd = bench_command("http://127.0.0.1:9", {"rate": 5, "spike_rps": 600}, tmp_path / "s.json",
                        label="case=a", db="x.duckdb", target_pid=42)
    assert cmd[cmd.index("bench"):] == [
        "bench", "--target", "http://127.0.0.1:9", "--summary-json", str(tmp_path / "s.json"),
        "--rate", "5", "--spike-rps", "600", "--label", "case=a", "--db", "x.duckdb", "--target-pid", "42"]


def test_bench_command_parses_with_the_real_bench_parser(tmp_path):
    """Every flag the default suite passes is one ``perfkit bench`` accepts."""
    from perfkit.cli import build_parser

    parser = build_parser()
    for case in suite.DEFAULT_CASES:
        cmd = bench_command("http://127.0.0.1:9", {**case.bench, "quiet": True}, tmp_path / "s.json",
                            label=suite.case_label("T", case), db="x.duckdb", target_pid=1)
        args = parser.parse_args(cmd[cmd.index("bench"):])
        assert args.label == f"suite=T,case={case.name}" + (f",{case.labels}" if case.labels else "")


def test_placeholders_name_runs_of_cases():
    ids = {"fixed": "r1", "dynamic": "r2"}
    params = {"baseline": "{run:fixed}", "candidate": "{run:dynamic}", "all": "{runs}", "s": "{suite}", "x": 1.5}
    assert suite.fill_parameters(params, ids, "suite=T") == {
        "baseline": "r1", "candidate": "r2", "all": "r1,r2", "s": "suite=T", "x": 1.5}
    assert suite.fill_parameters({"pair": "{run:fixed},{run:dynamic}"}, ids, "s") == {"pair": "r1,r2"}
    with pytest.raises(KeyError):
        suite.fill_parameters({"b": "{run:proxy}"}, ids, "suite=T")


def test_stamp_is_utc():
    when = dt.datetime(2026, 11, 25, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert suite.suite_stamp(when) == "20261125T020506Z"


def test_capabilities_follow_the_bench_choices():
    assert capabilities.capability_missing("bench:pattern:constant") is None
    assert capabilities.capability_missing("bench:pattern:teleport") == "perfkit bench has no --pattern teleport yet"
    assert capabilities.capability_missing("notebook:01_benchmark") is None
    assert capabilities.capability_missing("notebook:99_nothing") == "notebook 99_nothing not found"
    assert capabilities.capability_missing("module:perfkit.no_such_module").startswith("perfkit.no_such_module is not")
    with pytest.raises(ValueError):
        capabilities.capability_missing("weather:sunny")


def test_unavailable_cases_and_reports_say_why():
    s = Suite("t", (Case("a", {"rate": 1}), Case("b", {"rate": 1}, requires=("bench:pattern:teleport",))),
              (Comparison("c", "01_benchmark", {"no_such_param": 1}),))
    lines = capabilities.describe(s)
    assert "SKIP" not in lines[1]
    assert "SKIP: perfkit bench has no --pattern teleport yet" in lines[2]
    assert "SKIP: 01_benchmark.ipynb declares no parameter no_such_param" in lines[3]


def test_jobs_per_run_and_comparisons(capsys):
    a, b = Case("a", {"rate": 1}), Case("b", {"rate": 1})
    s = Suite("t", (a, b), (Comparison("cmp", "01_benchmark", {"run_id": "{run:b}"}),
                            Comparison("missing-run", "01_benchmark", {"run_id": "{run:zzz}"})))
    results = [CaseResult(a, run_id="ra"), CaseResult(b, failed="boom")]
    said: list[str] = []
    jobs = run.report_jobs(s, results, "T", {"window_s": "2"}, say=said.append)
    assert [(j.name, j.parameters) for j in jobs] == [("01_benchmark-a", {"window_s": 2.0, "run_id": "ra"})]
    assert said == ["  report cmp: skipped (case b has no run)", "  report missing-run: skipped (case zzz has no run)"]


def test_default_suite_has_the_promised_cases():
    names = [c.name for c in suite.get_suite("default").cases]
    for want in ("steady", "burst", "step", "batching-fixed", "batching-dynamic", "proxy", "llm-stream"):
        assert want in names
    fixed = next(c for c in suite.DEFAULT_CASES if c.name == "batching-fixed")
    dynamic = next(c for c in suite.DEFAULT_CASES if c.name == "batching-dynamic")
    assert fixed.bench == dynamic.bench  # same load, only the batching differs
    assert {k: v for k, v in fixed.server.items() if k != "batching"} == \
           {k: v for k, v in dynamic.server.items() if k != "batching"}
    with pytest.raises(UsageError):
        suite.get_suite("nope")


@pytest.mark.slow
def test_a_small_suite_runs_end_to_end(tmp_path, capsys):
    """Real demo server, real bench subprocess, real notebooks: one case, one skipped, one comparison."""
    import duckdb

    s = Suite("tiny", (
        Case("short", {"pattern": "constant", "rate": 20, "duration": 3, "min_duration_s": 3},
             server={"error_rate": 0.1, "seed": 1}, labels="hardware=cpu-test"),
        Case("future", {"rate": 1, "duration": 1}, requires=("bench:pattern:teleport",)),
    ), (Comparison("01_again", "01_benchmark", {"run_id": "{run:short}", "window_s": 0.5}),))
    db, out = tmp_path / "suite.duckdb", tmp_path / "reports"
    code = run.run_suite(s, db=str(db), out_dir=out, progress=False)
    text = capsys.readouterr().out
    assert code == 0, text
    assert "  future: skipped (perfkit bench has no --pattern teleport yet)" in text
    assert "2 of 2 reports ok, 1 runs, 1 cases skipped" in text
    con = duckdb.connect(str(db), read_only=True)
    try:
        (label, n, errors), = con.execute(
            "SELECT r.label, count(*), count(q.error_kind) FROM runs r JOIN requests q USING (run_id) "
            "GROUP BY r.label").fetchall()
    finally:
        con.close()
    assert label.startswith("suite=") and label.endswith(",case=short,hardware=cpu-test")
    assert n == 60 and 0 < errors < 60
    assert (out / "01_benchmark-short.html").exists() and (out / "01_again.html").exists()
    assert "suite.log" in {p.name for p in out.iterdir()}
    index = (out / "index.html").read_text()
    assert index.count("<tr class='ok'>") == 2
    assert "<tr><td>future</td><td>perfkit bench has no --pattern teleport yet</td><td>&mdash;</td></tr>" in index
    assert "CPU placement: " in index
