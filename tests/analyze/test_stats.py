"""perfkit.analyze.stats and the SQL-side run aggregates, against scipy, numpy and known values."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from scipy.stats.mstats import hdquantiles

from analyze_synth import insert_run
from perfkit import quantiles, store
from perfkit.analyze import stats
from perfkit.store import runs


def test_order_stat_ranks_match_binomial_definition():
    for n, q in [(100, 0.5), (1000, 0.99), (459, 0.99), (50, 0.9)]:
        lo, hi, cover = quantiles.order_stat_ranks(n, q, 0.95)
        assert cover >= 0.95
        if 1 <= lo and hi <= n:
            assert sps.binom.cdf(lo - 1, n, q) <= 0.025 + 1e-12
            assert 1 - sps.binom.cdf(hi - 1, n, q) <= 0.025 + 1e-12
    # too few requests for a P99 upper bound at 95%: the interval says so
    lo, hi, _ = quantiles.order_stat_ranks(100, 0.99, 0.95)
    assert hi == 101
    est = quantiles.quantile_ci(np.arange(100.0), 0.99)
    assert est.hi == math.inf and "too small" in est.note


def test_order_stat_interval_coverage_by_simulation():
    """The exact interval covers the true quantile at least 95% of the time (exponential, q=0.9)."""
    rng = np.random.default_rng(7)
    truth = -math.log(1 - 0.9)
    trials, hits = 1000, 0
    for _ in range(trials):
        est = quantiles.quantile_ci(rng.exponential(size=200), 0.9, 0.95)
        hits += est.lo <= truth <= est.hi
    # binomial(1000, 0.95) is above 0.93 with overwhelming probability
    assert hits / trials >= 0.93


def test_quantile_point_is_inverted_cdf_and_carries_n():
    x = np.arange(1.0, 11.0)
    est = quantiles.quantile_ci(x, 0.5)
    assert est.value == 5.0 and est.n == 10 and est.confidence == 0.95
    assert np.quantile(x, 0.5, method="inverted_cdf") == est.value


def test_harrell_davis_matches_scipy_and_bootstrap_contains_truth():
    rng = np.random.default_rng(3)
    x = rng.normal(10, 2, 2000)
    hd = quantiles.quantile_ci(x, 0.9, method="hd")
    assert hd.value == pytest.approx(float(hdquantiles(x, prob=[0.9])[0]))
    truth = 10 + 2 * sps.norm.ppf(0.9)
    assert hd.lo <= truth <= hd.hi
    bs = quantiles.quantile_ci(x, 0.9, method="bootstrap", n_resamples=400)
    assert bs.lo <= truth <= bs.hi and bs.lo < bs.value < bs.hi
    with pytest.raises(ValueError):
        quantiles.quantile_ci(x, 0.9, method="nope")


def test_sql_percentiles_equal_the_in_memory_ones(tmp_db):
    rng = np.random.default_rng(1)
    lat = rng.lognormal(3, 0.5, 3001)
    with store.connect(tmp_db) as con:
        insert_run(con, "r1", lat)
        got = runs.percentiles(con, "r1", qs=(0.5, 0.9, 0.99, 0.999))
    for q, est in got.items():
        ref = quantiles.quantile_ci(lat, q)
        assert (est.value, est.lo, est.hi, est.n) == (ref.value, ref.lo, ref.hi, ref.n)


def test_slo_verdicts():
    rng = np.random.default_rng(0)
    x = rng.exponential(10, 5000)          # true P99 = 46.1 ms
    assert stats.evaluate_slo(x, 80.0).verdict == "met"
    assert stats.evaluate_slo(x, 30.0).verdict == "missed"
    assert stats.evaluate_slo(x[:50], 46.0).verdict == "inconclusive"
    assert stats.evaluate_slo([], 10.0).verdict == "no data"
    r = stats.evaluate_slo(x, 80.0)
    assert r.over_fraction.n == 5000 and r.observed.n == 5000


def test_goodput_counts_only_ok_requests_within_every_slo():
    frame = pd.DataFrame({"error_kind": [None, None, "timeout", None],
                          "latency_ms": [10.0, 50.0, 5.0, 20.0], "ttft_ms": [1.0, 1.0, 1.0, None]})
    g = stats.goodput(frame, duration_s=2.0, slos_ms={"latency_ms": 30.0, "ttft_ms": 5.0})
    assert g["good_requests"] == 1 and g["goodput_rps"] == 0.5 and g["requests"] == 4
    assert g["good_fraction"]["n"] == 4


def _windows(ok_ratio: list[float], per_window: int = 100) -> pd.DataFrame:
    return pd.DataFrame({"window_s": np.arange(len(ok_ratio), dtype=float),
                         "requests": per_window,
                         "ok": [round(r * per_window) for r in ok_ratio]})


def test_availability_and_mttr_from_a_fault_timeline():
    # 10 good s, 4 s outage, 1 good s, 1 bad s (same episode: recovery must be sustained), 10 good s
    ratios = [1.0] * 10 + [0.2] * 4 + [1.0] + [0.5] + [1.0] * 10
    w = _windows(ratios)
    av = stats.availability(w)
    assert av["window"].value == pytest.approx(21 / 26) and av["window"].n == 26
    eps = stats.fault_episodes(w, sustain_s=3)
    assert len(eps) == 1 and eps[0].onset_s == 10.0 and eps[0].recovered_s == 16.0
    m = stats.mttr(eps)
    assert m.value == 6.0 and m.n == 1 and m.unit == "s"
    # two separate faults
    w2 = _windows([1.0] * 5 + [0.0] * 2 + [1.0] * 5 + [0.0] * 4 + [1.0] * 5)
    m2 = stats.mttr(stats.fault_episodes(w2))
    assert m2.n == 2 and m2.value == 3.0
    # a fault that never recovers is reported, not averaged in
    m3 = stats.mttr(stats.fault_episodes(_windows([1.0] * 5 + [0.0] * 3)))
    assert m3.n == 0 and "not recovered" in m3.note
    # no fault at all
    assert stats.fault_episodes(_windows([1.0] * 10)) == []


def test_batch_efficiency_and_littles_law():
    eff = stats.batch_efficiency(total_sum=240, total_count=60, max_batch=8,
                                 buckets={1: 0, 2: 10, 4: 30, 8: 60, math.inf: 60})
    assert eff["mean_batch_size"] == 4.0 and eff["efficiency"] == 0.5 and eff["padding_waste"] == 0.5
    assert eff["full_batch_share"] == 0.5 and eff["inference_calls"] == 60
    assert math.isnan(stats.batch_efficiency(0, 0, 8)["mean_batch_size"])
    ok = stats.littles_law(mean_in_flight=5.0, arrival_rate_rps=100, mean_latency_ms=50)
    assert ok["L_predicted"] == 5.0 and ok["consistent"]
    bad = stats.littles_law(mean_in_flight=2.0, arrival_rate_rps=100, mean_latency_ms=50)
    assert not bad["consistent"] and bad["relative_gap"] == pytest.approx(-0.6)


def test_qps_at_slo_picks_the_fastest_level_within_the_slo(tmp_db):
    rng = np.random.default_rng(2)
    with store.connect(tmp_db) as con:
        insert_run(con, "slow", rng.exponential(10, 2000) + 100, rate_rps=400)
        insert_run(con, "fast", rng.exponential(10, 1000), rate_rps=200, t0=1.8e9)
        insert_run(con, "low", rng.exponential(5, 500), rate_rps=50, t0=1.9e9)
        got = runs.qps_at_slo(con, ["slow", "fast", "low"], p99_ms=80)
        none = runs.qps_at_slo(con, ["slow"], p99_ms=80)
    assert got["run_id"] == "fast" and got["n"] == 1000 and 150 < got["qps"] < 210
    assert math.isnan(none["qps"]) and none["n"] == 0


def test_windows_and_schedule_lag_in_sql(tmp_db):
    lat = np.full(1000, 10.0)
    lag = np.zeros(1000)
    lag[500:] = 30.0
    err = np.zeros(1000, bool)
    err[:100] = True
    with store.connect(tmp_db) as con:
        insert_run(con, "r", lat, rate_rps=100, lag_ms=lag, errors=err)
        w = runs.windows(con, "r")
        lagstats = runs.schedule_lag(con, "r")
        tot = runs.totals(con, "r")
    assert len(w) == 10 and int(w["requests"].sum()) == 1000
    assert w["errors"].tolist()[0] == 100 and w["ok"].tolist()[0] == 0
    # inverted CDF (the one definition): the 500th of 1000 lags is still 0; no interpolation to 15
    assert lagstats["p99_ms"] == pytest.approx(30.0, abs=1e-3) and lagstats["p50_ms"] == pytest.approx(0.0, abs=1e-3)
    assert tot["errors"] == {"http_5xx": 100} and tot["arrival_rate_rps"] == pytest.approx(100.0)


def test_goodput_in_sql_with_llm_bounds(tmp_db):
    import json

    from perfkit.analyze import rootcause

    lat = np.array([10.0, 50.0, 20.0, 30.0])
    err = np.array([False, False, True, False])
    with store.connect(tmp_db) as con:
        insert_run(con, "llm", lat, rate_rps=2.0, errors=err, scenario={"slo": {"latency_ms": 40, "ttft_ms": 5}})
        # the ttft_ms bound is on the TTFT from the intended send
        con.execute("UPDATE requests SET ttft_intended_ms = CASE seq WHEN 0 THEN 2 WHEN 1 THEN 3 WHEN 3 THEN 9 END")
        g = runs.goodput(con, "llm", {"latency_ms": 40, "ttft_ms": 5})
        out = rootcause.analyze_run(con, "llm")
        with pytest.raises(ValueError):
            runs.goodput(con, "llm", {"latency_ms; DROP": 1})
    assert g["good_requests"] == 1 and g["requests"] == 4 and g["good_fraction"]["n"] == 4
    assert g["goodput_rps"] == pytest.approx(1 / (1.5 + 0.03))
    assert out["goodput"]["good_requests"] == 1 and out["slo_ttft_ms_p99"]["p99"]["n"] == 3
    json.dumps(out["goodput"])
