"""The A/B judge and its two-sample estimators: pieces against brute force and scipy, verdicts on known shifts."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from perfkit.analyze import abtest, stats, twosample


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


def test_mwu_p_value_and_cliffs_delta_match_scipy_and_brute_force():
    rng = np.random.default_rng(2)
    b, c = rng.lognormal(3, 0.3, 400), rng.lognormal(3.05, 0.3, 400)
    res = abtest.compare_location("latency_ms", b, c, abtest.Thresholds())
    bb, cc = twosample.remove_outliers_iqr(b), twosample.remove_outliers_iqr(c)
    assert res.p_value == pytest.approx(sps.mannwhitneyu(cc, bb).pvalue)
    assert res.ks_p_value == pytest.approx(sps.ks_2samp(cc, bb).pvalue)
    gt = (cc[:, None] > bb[None, :]).mean()
    lt = (cc[:, None] < bb[None, :]).mean()
    assert res.cliffs_delta == pytest.approx(gt - lt)


def test_holm_matches_statsmodels():
    p = [0.01, 0.04, 0.03, 0.2, float("nan")]
    ours = stats.holm(p)
    ref = multipletests(p[:4], method="holm")[1]
    assert ours[:4] == pytest.approx(list(ref)) and math.isnan(ours[4])


def test_outlier_removal_iqr3():
    x = np.concatenate([np.arange(100.0), [1e6]])
    kept = twosample.remove_outliers_iqr(x)
    assert kept.size == 100 and kept.max() == 99.0


def test_bootstrap_difference_interval_contains_the_true_difference():
    rng = np.random.default_rng(9)
    b, c = rng.exponential(10, 4000), rng.exponential(10, 4000) + 5
    d = twosample.bootstrap_quantile_diff(c, b, 0.5, n_resamples=500)
    assert d.lo <= 5.0 <= d.hi and d.n == 4000


def test_verdict_fail_on_a_regression():
    rng = np.random.default_rng(0)
    b, c = rng.lognormal(3, 0.4, 3000), rng.lognormal(3, 0.4, 3000) * 1.25
    v = abtest.compare_samples({"latency_ms": b}, {"latency_ms": c}, (3, 3000, 2, 3000))
    assert v.verdict == "fail" and v.regression
    loc = v.metrics[0]
    assert loc.classification == "High" and loc.difference.lo > 0 and loc.p_adjusted < 0.02


def test_verdict_pass_when_nothing_changed_and_low_on_an_improvement():
    rng = np.random.default_rng(1)
    b, c = rng.lognormal(3, 0.4, 20000), rng.lognormal(3, 0.4, 20000)
    v = abtest.compare_samples({"latency_ms": b}, {"latency_ms": c}, (3, 20000, 4, 20000))
    assert v.verdict == "pass" and v.score == 100.0
    # the same with 3,000 requests a side: the P99 interval is too wide to call
    few = abtest.compare_samples({"latency_ms": b[:3000]}, {"latency_ms": c[:3000]})
    assert few.verdict == "inconclusive" and few.metrics[1].classification == "Inconclusive"
    faster = abtest.compare_samples({"latency_ms": b}, {"latency_ms": c * 0.7})
    assert faster.verdict == "pass" and faster.metrics[0].classification == "Low"


def test_a_tiny_but_significant_shift_is_not_a_regression():
    """Practical margin: 0.3% slower with 20k requests is significant but not a regression."""
    rng = np.random.default_rng(4)
    b = rng.normal(100, 1, 20000)
    c = rng.normal(100.3, 1, 20000)
    v = abtest.compare_samples({"latency_ms": b}, {"latency_ms": c})
    loc = v.metrics[0]
    assert loc.p_adjusted < 1e-6 and loc.classification == "Pass" and "margin" in loc.reason
    assert v.verdict != "fail"


def test_inconclusive_with_too_few_requests_and_errors_regression():
    rng = np.random.default_rng(6)
    few = abtest.compare_samples({"latency_ms": rng.exponential(10, 50)}, {"latency_ms": rng.exponential(10, 50)})
    assert few.verdict == "inconclusive"
    assert [m.classification for m in few.metrics] == ["Pass", "Nodata"]
    b, c = rng.exponential(10, 2000), rng.exponential(10, 2000)
    errs = abtest.compare_samples({"latency_ms": b}, {"latency_ms": c}, (2, 2000, 120, 2000))
    assert errs.verdict == "fail" and errs.metrics[-1].classification == "High"
