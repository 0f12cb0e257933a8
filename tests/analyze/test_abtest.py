"""The A/B judge: autocorrelation, the hierarchical bootstrap, decisions against the margin, the JSON contract."""
from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ab_synth import ar1, runs
from perfkit import jsonsafe
from perfkit.analyze import abtest, bootstrap, twosample
from perfkit.analyze.bootstrap import RunSeries
from perfkit.quantiles import Estimate, percentiles

FAST = abtest.Thresholds(resamples=200, outer=1000)


# --------------------------------------------------------------------------- Hodges–Lehmann (root cause)

@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-50, 50), min_size=1, max_size=25),
       st.lists(st.integers(-50, 50), min_size=1, max_size=25), st.data())
def test_kth_pairwise_difference_equals_brute_force(xs, ys, data):
    x, y = np.array(xs, float), np.array(ys, float)
    diffs = np.sort((x[:, None] - y[None, :]).ravel())
    k = data.draw(st.integers(1, diffs.size))
    assert twosample.kth_pairwise_difference(x, y, k) == diffs[k - 1]


def test_hodges_lehmann_is_the_median_of_pairwise_differences():
    rng = np.random.default_rng(5)
    x, y = rng.normal(1.0, 1, 40), rng.normal(0.0, 1, 31)
    diffs = (x[:, None] - y[None, :]).ravel()
    hl = twosample.hodges_lehmann(x, y)
    assert hl.value == pytest.approx(np.median(diffs))
    assert hl.lo < hl.value < hl.hi and hl.confidence == 0.98 and hl.n == 31


def test_hodges_lehmann_interval_covers_a_known_shift():
    rng = np.random.default_rng(11)
    trials, hits = 200, 0
    for _ in range(trials):
        x, y = rng.exponential(1, 60) + 0.5, rng.exponential(1, 60)
        hl = twosample.hodges_lehmann(x, y, 0.98)
        hits += hl.lo <= 0.5 <= hl.hi
    assert hits / trials >= 0.94


# --------------------------------------------------------------------------- dependence within a run

@pytest.mark.parametrize("phi", [0.0, 0.5, 0.8])
def test_autocorrelation_time_of_ar1_is_its_theory(phi):
    rng = np.random.default_rng(3)
    taus = [bootstrap.autocorrelation_time(ar1(8000, phi, rng)) for _ in range(10)]
    assert np.mean(taus) == pytest.approx((1 + phi) / (1 - phi), rel=0.2)


def test_block_length_grows_with_dependence_and_is_one_for_constants():
    rng = np.random.default_rng(4)
    iid, dependent = bootstrap.block_length(rng.normal(size=4000)), bootstrap.block_length(ar1(4000, 0.9, rng))
    assert 1.0 <= iid < 4 < dependent
    assert bootstrap.block_length(np.full(500, 3.0)) == 1.0


def test_run_statistics_are_perfkits_percentiles_and_the_failed_share():
    rng = np.random.default_rng(8)
    x = rng.lognormal(2, 0.5, 999)
    failed = np.zeros(999, bool)
    failed[::10] = True
    gappy = np.where(failed, np.nan, x)
    for values, share in ((x, 0.0), (gappy, failed.mean())):
        got = bootstrap.run_statistics(values, failed if share else np.zeros(999, bool))[0]
        ref = percentiles(values, {"p50": 0.5, "p99": 0.99})
        assert got[0] == ref["p50"] and got[1] == ref["p99"] and got[2] == pytest.approx(share)


def test_effective_size_counts_autocorrelation():
    rng = np.random.default_rng(9)
    iid = bootstrap.bootstrap_run(RunSeries("a", rng.lognormal(2, 0.3, 3000), np.zeros(3000, bool)), 50)
    dep = bootstrap.bootstrap_run(RunSeries("b", np.exp(2 + 0.3 * ar1(3000, 0.8, rng)), np.zeros(3000, bool)), 50)
    assert iid.n == dep.n == 3000
    assert iid.n_effective > 2000 and dep.n_effective < 600
    assert dep.block_length > iid.block_length


def test_within_run_interval_widens_with_autocorrelation():
    """The same marginal distribution, dependent: a block bootstrap sees the larger uncertainty."""
    rng = np.random.default_rng(10)
    iid = bootstrap.bootstrap_run(RunSeries("a", np.exp(0.3 * rng.normal(size=3000)), np.zeros(3000, bool)), 300)
    dep = bootstrap.bootstrap_run(RunSeries("b", np.exp(0.3 * ar1(3000, 0.8, rng)), np.zeros(3000, bool)), 300)
    assert dep.replicates[:, 0].std() > 2 * iid.replicates[:, 0].std()


def test_one_run_per_arm_resamples_only_within_the_run():
    rng = np.random.default_rng(1)
    boot = bootstrap.bootstrap_run(runs(rng, 1)[0], 100)
    reps = bootstrap.arm_replicates([boot], 500, np.random.default_rng(0))
    assert set(np.round(reps[:, 0], 9)) <= set(np.round(boot.replicates[:, 0], 9))


# --------------------------------------------------------------------------- decisions

def _decide(lo: float, hi: float, margin: float = 0.5) -> abtest.MetricResult:
    diff = Estimate((lo + hi) / 2, lo, hi, 1000, 0.9, "hierarchical bootstrap", "ms")
    return abtest.decide("latency_ms p50", "p50", 10.0, 10.0 + diff.value, diff, margin, True)


def test_decisions_come_from_the_interval_against_the_margin():
    assert _decide(0.6, 0.9).decision == "fail"
    assert _decide(0.1, 0.3).decision == "pass"          # clearly non-zero, but smaller than the margin
    assert _decide(-0.3, 0.3).decision == "pass" and "within" in _decide(-0.3, 0.3).reason
    assert _decide(-2.0, -0.7).decision == "pass" and "better" in _decide(-2.0, -0.7).reason
    assert _decide(0.2, 0.8).decision == "inconclusive"
    assert _decide(-0.8, 0.8).decision == "inconclusive"
    nodata = abtest.decide("x p99", "p99", 1.0, 1.0, Estimate(1, 0, 2, 5, 0.9, "m", "ms"), 0.1, enough=False)
    assert nodata.decision == "inconclusive" and "too few" in nodata.reason
    assert abtest.overall([_decide(0.6, 0.9), _decide(0.2, 0.8)]) == "fail"
    assert abtest.overall([_decide(0.1, 0.3), _decide(0.2, 0.8)]) == "inconclusive"
    assert abtest.overall([_decide(0.1, 0.3), _decide(-0.3, 0.3)]) == "pass"


def test_a_large_slowdown_fails_and_an_improvement_passes():
    rng = np.random.default_rng(0)
    base = runs(rng, 3)
    slower = abtest.compare_series(base, runs(rng, 3, scale=1.3, tag="c"), FAST)
    assert slower.verdict == "fail" and slower.regression
    p50 = slower.metrics[0]
    assert p50.decision == "fail" and p50.difference.lo > p50.margin and p50.relative == pytest.approx(0.3, abs=0.06)
    assert slower.sentence().startswith("FAIL: the candidate is worse: latency_ms p50 +")
    faster = abtest.compare_series(base, runs(rng, 3, scale=0.7, tag="c"), FAST)
    assert faster.verdict == "pass" and "better" in faster.metrics[0].reason


def test_errors_alone_fail_the_candidate():
    rng = np.random.default_rng(2)
    v = abtest.compare_series(runs(rng, 3, errors=0.001), runs(rng, 3, errors=0.06, tag="c"), FAST)
    err = v.metrics[-1]
    assert err.statistic == "error_rate" and err.decision == "fail" and err.difference.lo > 0.005
    assert v.verdict == "fail"


def test_one_run_per_arm_says_run_to_run_variance_is_unknown():
    rng = np.random.default_rng(3)
    v = abtest.compare_series(runs(rng, 1), runs(rng, 1, tag="c"), FAST)
    assert v.method["name"] == "within-run block bootstrap" and v.method["run_to_run_variance"] == "unknown"
    assert "run-to-run variance is unknown" in v.sentence()
    assert any("one baseline run" in n for n in v.notes)
    three = abtest.compare_series(runs(rng, 3), runs(rng, 3, tag="c"), FAST)
    assert three.method["name"] == "hierarchical bootstrap" and "unknown" not in three.sentence()


def test_verdict_json_follows_its_schema_and_is_reproducible():
    rng = np.random.default_rng(4)
    base, cand = runs(rng, 3, n=800), runs(rng, 2, n=800, tag="c")
    v = abtest.compare_series(base, cand, FAST, seed=7, selectors=("case=a", "case=b"))
    data = v.to_dict()
    jsonschema.validate(json.loads(jsonsafe.dumps(data)), abtest.schema())
    assert data["baseline"]["repeats"] == 3 and data["candidate"]["repeats"] == 2
    assert data["baseline"]["selector"] == "case=a" and data["method"]["seed"] == 7
    assert 0 < data["baseline"]["effective_requests"] <= data["baseline"]["requests"] == 2400
    again = abtest.compare_series(base, cand, FAST, seed=7, selectors=("case=a", "case=b")).to_dict()
    assert again == data
    table = v.runs()
    assert list(table["arm"]) == ["baseline"] * 3 + ["candidate"] * 2 and (table["effective_requests"] > 0).all()


def test_too_few_requests_for_a_p99_is_inconclusive_not_fail():
    rng = np.random.default_rng(6)
    v = abtest.compare_series(runs(rng, 3, n=120), runs(rng, 3, n=120, scale=1.5, tag="c"), FAST)
    p99 = v.metrics[1]
    assert p99.decision == "inconclusive" and "too few" in p99.reason
    assert v.metrics[0].decision == "fail"      # the P50 still has enough
