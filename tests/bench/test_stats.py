"""Summary percentiles (perfkit.quantiles) against DuckDB, the summary's CI coverage,
LoadGen early-stopping arithmetic, the status rules."""
from __future__ import annotations

import duckdb
import numpy as np
import pytest

from perfkit.bench import stats
from perfkit.bench.summary import latency_ci
from perfkit.quantiles import percentiles


def test_summary_percentiles_match_duckdb_quantile_disc():
    x = np.random.default_rng(0).lognormal(size=1001)
    ours = percentiles(x)
    con = duckdb.connect()
    con.register("t", {"x": x})
    row = con.execute("SELECT quantile_disc(x, 0.5), quantile_disc(x, 0.99), quantile_disc(x, 0.999) FROM t").fetchone()
    assert (ours["p50"], ours["p99"], ours["p999"]) == pytest.approx(row)
    assert ours["n"] == 1001


def test_early_stopping_matches_loadgen_figures():
    # t = 0: ceil(log(1 - c) / log(p)) passing queries (LoadGen, c = 0.99)
    assert stats.min_queries(0, 0.99) == 459
    assert stats.min_queries(0, 0.90) == 44
    assert stats.min_queries(0, 0.999) == 4603
    # with t failures, P[Binomial(h + t, 1 - p) <= t] <= 1 - c holds at h and not at h - 1
    for t in (1, 5, 50):
        h = stats.min_passing_queries(t, 0.99)
        assert stats.early_stopping_odds(h, t, 0.99) <= 0.01 < stats.early_stopping_odds(h - 1, t, 0.99)
    needs = [stats.min_queries(t, 0.99) for t in range(20)]
    assert needs == sorted(needs)


def test_early_stopping_estimate_is_conservative():
    x = np.random.default_rng(1).exponential(size=20000)
    es = stats.early_stopping_estimate(x, 0.99)
    assert es["met"] and es["bound"] >= np.quantile(x, 0.99, method="inverted_cdf")
    assert not stats.early_stopping_estimate(x[:661], 0.99)["met"]
    first = stats.early_stopping_estimate(x[:662], 0.99)
    assert first["discarded"] == 0 and first["bound"] == x[:662].max()


LOADGEN_SUT = """
import os, sys
import mlperf_loadgen as lg
n, p = int(sys.argv[1]), float(sys.argv[2])
def issue(samples):
    lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, 0, 0) for s in samples])
sut = lg.ConstructSUT(issue, lambda: None)
qsl = lg.ConstructQSL(64, 64, lambda s: None, lambda s: None)
ts = lg.TestSettings()
ts.scenario = lg.TestScenario.SingleStream
ts.mode = lg.TestMode.PerformanceOnly
ts.min_query_count = ts.max_query_count = n
ts.min_duration_ms = 0
ts.single_stream_expected_latency_ns = 100000
ts.single_stream_target_latency_percentile = p
log = lg.LogSettings()
log.log_output.outdir = os.getcwd()
lg.StartTestWithLogSettings(sut, qsl, ts, log)
"""


@pytest.mark.parametrize("n,p", [(100, 0.9), (1000, 0.9), (661, 0.99), (662, 0.99), (5000, 0.99)])
def test_early_stopping_matches_mlcommons_loadgen(tmp_path, n, p):
    # Run the real LoadGen (mlcommons-loadgen) on n instant queries and read what it would
    # discard for its early-stopping estimate; ours must say the same.
    import re
    import subprocess
    import sys

    (tmp_path / "sut.py").write_text(LOADGEN_SUT)
    subprocess.run([sys.executable, "sut.py", str(n), str(p)], cwd=tmp_path, capture_output=True, timeout=120,
                   check=True)
    summary = (tmp_path / "mlperf_log_summary.txt").read_text()
    ours = stats.early_stopping_estimate(np.arange(n, dtype=float), p)
    m = re.search(r"Would discard (\d+) highest latency queries", summary)
    if m is None:
        assert "Only processed" in summary and not ours["met"]
    else:
        assert ours["met"] and ours["discarded"] == int(m.group(1))


def test_summary_ci_covers_the_true_quantile():
    rng = np.random.default_rng(5)
    truth = -np.log(1 - 0.99)  # Exp(1) P99
    hits = 0
    trials = 300
    for _ in range(trials):
        lo, hi = latency_ci(rng.exponential(size=2000), 0.95)["p99"]
        hits += lo <= truth <= hi
    assert 0.92 <= hits / trials <= 0.995


def test_summary_ci_says_none_where_the_sample_cannot_support_a_bound():
    ci = latency_ci(np.arange(100.0), 0.95)
    assert ci["p50"][0] is not None and ci["p50"][1] is not None
    assert ci["p999"][1] is None                 # 100 values cannot bound P99.9 from above
    assert latency_ci(np.array([1.0]), 0.95)["p99"] is None


def test_lag_summary_late_fraction():
    lag = stats.lag_summary(np.array([0.1] * 98 + [6.0, 7.0]), late_ms=5.0)
    assert lag["late_fraction"] == pytest.approx(0.02) and lag["max"] == 7.0


def test_decide_status_rules():
    from perfkit.bench.summary import decide_status

    ok = np.array([True] * 90 + [False] * 10)
    conn = ~ok
    seq = np.arange(100)
    assert decide_status(ok, conn, seq, False, None)[0] == "failed"          # target died: last 10 refused
    assert decide_status(ok, conn, seq[::-1], False, None)[0] == "completed"  # same errors at the start
    assert decide_status(ok, np.zeros(100, bool), seq, False, None)[0] == "completed"  # HTTP errors only
    assert decide_status(ok, conn, seq, True, None)[0] == "interrupted"
    assert decide_status(ok, conn, seq, False, "boom")[0] == "failed"
    none_ok = np.zeros(100, bool)
    status, reason = decide_status(none_ok, none_ok, seq, False, None, {"http_5xx": 100})
    assert status == "failed" and "http_5xx" in reason
    half = np.array([True, False] * 50)
    assert decide_status(half, ~half, seq, False, None)[0] == "failed"       # >= 50% connection errors
