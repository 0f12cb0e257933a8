"""Trends: change points in a case's history, their class against the margin, the gate and acknowledgements."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories import make_run

from perfkit import store
from perfkit.analyze import history, trend_calibration, trend_store
from perfkit.cli import main


def _frame(values, versions=None) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame({"run_id": [f"r{i}" for i in range(n)], "started_at": "", "case": "c",
                         "version": versions or [""] * n, "tool_version": "", "machine": "",
                         "value": values, "lo": np.nan, "hi": np.nan, "n": 0})


def _noisy(n: int, seed: int, noise: float = 0.03) -> np.ndarray:
    return 100.0 * np.random.default_rng(seed).lognormal(0.0, noise, n)


def test_a_step_is_found_where_it_is_and_classified_a_regression():
    values = _noisy(24, 3)
    values[14:] *= 1.12
    versions = ["1.0"] * 14 + ["1.1"] * 10
    (change,) = history.find_changes(_frame(values, versions), "c", "p99_ms")
    assert change.index == 14 and change.run_id == "r14"
    assert (change.version_before, change.version_after) == ("1.0", "1.1")
    assert change.kind == history.REGRESSION and change.runs_since == 10
    assert change.change.lo < 0.12 < change.change.hi and change.change.lo > 0.05
    assert "rose" in change.sentence() and "open since 10 runs" in change.sentence()


def test_a_flat_history_and_a_small_shift_are_not_regressions():
    assert history.find_changes(_frame(_noisy(30, 4)), "c", "p99_ms") == []
    values = _noisy(40, 5, noise=0.003)
    values[20:] *= 1.02                  # certain, but below the 5 % margin
    kinds = [c.kind for c in history.find_changes(_frame(values), "c", "p99_ms")]
    assert kinds == [history.WITHIN_MARGIN]


def test_an_improvement_that_returns_closes_the_regression():
    values = _noisy(30, 6)
    values[10:20] *= 1.3
    frame = _frame(values)
    changes = history.find_changes(frame, "c", "p99_ms")
    assert [(c.index, c.kind) for c in changes] == [(10, history.REGRESSION), (20, history.IMPROVEMENT)]
    assert history.open_regressions(changes, frame) == []
    values[20:] = values[20:] * 1.3      # still worse: the regression stays open
    assert [c.index for c in history.trend({("c", "p99_ms"): _frame(values)}).open] == [10]


def test_too_short_a_history_says_so():
    result = history.trend({("c", "p99_ms"): _frame(_noisy(4, 1))})
    assert not result.enough and "Not enough history" in result.summary()
    assert result.figures()[history.OPEN_REGRESSIONS] == "none"


def test_calibration_small_seeded():
    flat = trend_calibration.false_positives(60, seed=11)
    step = trend_calibration.detection(20, 0.10, seed=12)
    assert flat.hits <= 3 and flat.rate.lo <= flat.rate.value <= flat.rate.hi
    assert step.hits >= 18 and all(1 <= d <= 10 for d in step.delays)


def _history_db(tmp_path, slow_from: int = 6, n: int = 10):
    db = tmp_path / "trend.duckdb"
    rng = np.random.default_rng(9)
    with store.connect(db) as con:
        for i in range(n):
            rid = f"run{i:02d}"
            version = "1.0" if i < slow_from else "1.1"
            make_run(con, rid, labels={"case": "steady", "version": version},
                     started_at=f"2026-11-{i + 1:02d} 03:00:00+00", tool_version="0.9")
            level = 10.0 * (1.5 if i >= slow_from else 1.0)
            lat = level * rng.lognormal(0.0, 0.2, 800)
            rows = pd.DataFrame({"latency_ms": lat, "intended_unix_s": np.arange(800.0)})  # noqa: F841
            con.execute("INSERT INTO requests (run_id, seq, latency_ms, intended_unix_s) "
                        "SELECT ?, row_number() OVER () - 1, latency_ms, intended_unix_s FROM rows", [rid])
    return db


def test_history_reads_one_point_per_run_with_its_interval(tmp_path):
    db = _history_db(tmp_path)
    with store.connect(db, read_only=True) as con:
        frame = trend_store.case_history(con, "steady", "p99_ms")
    assert list(frame["run_id"]) == [f"run{i:02d}" for i in range(10)]
    assert (frame["lo"] <= frame["value"]).all() and (frame["value"] <= frame["hi"]).all()
    assert set(frame["n"]) == {800} and list(frame["version"][5:7]) == ["1.0", "1.1"]


def test_trend_gate_fails_until_acknowledged(tmp_path, capsys):
    db = str(_history_db(tmp_path))
    assert main(["history", "--case", "steady", "--metric", "p50_ms", "--db", db]) == 0
    assert main(["trend", "--db", db]) == 0
    assert main(["trend", "--gate", "--case", "steady", "--db", db]) == 1
    out = capsys.readouterr().out
    assert "run06" in out and "versions 1.0 -> 1.1" in out
    with store.connect(db, read_only=True) as con:
        ids = [c.change_id for c in trend_store.load_trend(con, ["steady"]).open]
    assert len(ids) == 2                                  # p50 and p99
    for cid in ids:
        assert main(["trend", "--ack", cid, "--reason", "accepted: bigger model", "--db", db]) == 0
    assert main(["trend", "--gate", "--db", db]) == 0
    with store.connect(db, read_only=True) as con:
        acks = trend_store.acknowledged(con)
    assert set(acks["change_id"]) == set(ids) and set(acks["reason"]) == {"accepted: bigger model"}
    assert acks["acknowledged_by"].str.len().min() > 0


@pytest.mark.parametrize("argv", [
    ["trend", "--case", "nope"], ["trend", "--metric", "p42"], ["trend", "--margin", "0"],
    ["trend", "--ack", "abc"], ["trend", "--ack", "0123456789", "--reason", "x"],
    ["history", "--case", "nope"], ["history", "--case", "steady", "--metric", "bad"]])
def test_bad_input_exits_2(tmp_path, argv):
    db = str(_history_db(tmp_path, n=3))
    assert main([*argv, "--db", db]) == 2


def test_report_sets_newest_first_with_open_regressions():
    from perfkit.report.index import ReportRecord, ReportSet, build_index_html

    def rec(at: str, regressions: str) -> ReportRecord:
        return ReportRecord(name="07_trends", notebook="notebooks/07_trends.ipynb", html="07_trends.html",
                            rendered_at=at, headlines=[{"title": "Trends", "figures": {
                                "series": "2", history.OPEN_REGRESSIONS: regressions}}])
    page = build_index_html([], "now", sets=[ReportSet("2026-11-01", [rec("2026-11-01T03:00:00+00:00", "none")]),
                                             ReportSet("2026-11-02", [rec("2026-11-02T03:00:00+00:00", "p99 <rose>")])])
    assert page.index("2026-11-02/index.html") < page.index("2026-11-01/index.html")
    assert "p99 &lt;rose&gt;" in page and "2 report sets" in page


def test_version_label_from_the_scheduler(monkeypatch):
    from perfkit.pipeline.bench import with_version

    monkeypatch.setenv("PERFKIT_VERSION_LABEL", "1.4.2")
    assert with_version("suite=s,case=c") == "suite=s,case=c,version=1.4.2"
    assert with_version("case=c,version=9") == "case=c,version=9"
    monkeypatch.delenv("PERFKIT_VERSION_LABEL")
    assert with_version("case=c") == "case=c"
