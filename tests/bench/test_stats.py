"""Percentile definition, order-statistic CI coverage, LoadGen early-stopping arithmetic."""
from __future__ import annotations

import duckdb
import numpy as np
import pytest

from perfkit.bench import stats


def test_percentiles_match_duckdb_quantile_disc():
    x = np.random.default_rng(0).lognormal(size=1001)
    ours = stats.percentiles(x)
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
    assert not stats.early_stopping_estimate(x[:458], 0.99)["met"]
    assert stats.early_stopping_estimate(x[:459], 0.99)["overlatency_allowed"] == 0


def test_order_statistic_ci_covers_the_true_quantile():
    rng = np.random.default_rng(5)
    truth = -np.log(1 - 0.99)  # Exp(1) P99
    hits = 0
    trials = 300
    for _ in range(trials):
        lo, hi = stats.order_statistic_ci(rng.exponential(size=2000), 0.99, 0.95)
        hits += lo <= truth <= hi
    assert 0.92 <= hits / trials <= 0.995


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
