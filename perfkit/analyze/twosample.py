"""Two-sample estimators for A/B comparisons, as pure functions over arrays.

* Kayenta's outlier rule: values outside ``[Q1 - 3 IQR, Q3 + 3 IQR]`` removed.
* Hodges–Lehmann shift ``median(x_i - y_j)`` with the Moses distribution-free
  interval, computed without forming the n*m pairwise differences.
* Cliff's delta from the Mann–Whitney U.
* Percentile-bootstrap intervals of quantile differences (independent resampling).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats as sps

from perfkit.quantiles import Estimate


def remove_outliers_iqr(x: np.ndarray, k: float = 3.0) -> np.ndarray:
    """Values within ``[Q1 - k IQR, Q3 + k IQR]`` (Kayenta removes with k = 3)."""
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    if x.size < 4:
        return x
    q1, q3 = np.percentile(x, [25, 75])
    iqr = q3 - q1
    return x[(x >= q1 - k * iqr) & (x <= q3 + k * iqr)]


def _count_diffs_le(x_sorted: np.ndarray, y_sorted: np.ndarray, d: float) -> int:
    """Number of pairs with ``x_i - y_j <= d``."""
    m = y_sorted.size
    return int((m - np.searchsorted(y_sorted, x_sorted - d, side="left")).sum())


def kth_pairwise_difference(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """The k-th smallest (1-based) of all ``x_i - y_j`` without forming the n*m pairs.

    Bisection on the value with an O((n + m) log m) pair count, then a snap to
    the largest actual difference at or below the bracket's top, which is exact.
    """
    xs, ys = np.sort(np.asarray(x, float)), np.sort(np.asarray(y, float))
    total = xs.size * ys.size
    if not 1 <= k <= total:
        raise ValueError(f"k={k} outside 1..{total}")
    lo, hi = xs[0] - ys[-1], xs[-1] - ys[0]
    if _count_diffs_le(xs, ys, lo) >= k:
        return float(lo)
    for _ in range(200):  # invariant: count(lo) < k <= count(hi)
        mid = lo + (hi - lo) / 2
        if mid <= lo or mid >= hi:
            break
        if _count_diffs_le(xs, ys, mid) >= k:
            hi = mid
        else:
            lo = mid
    # largest x_i - y_j <= hi: for each x_i the smallest y_j >= x_i - hi
    idx = np.searchsorted(ys, xs - hi, side="left")
    valid = idx < ys.size
    return float(np.max(xs[valid] - ys[idx[valid]]))


def hodges_lehmann(x: np.ndarray, y: np.ndarray, confidence: float = 0.98) -> Estimate:
    """Hodges–Lehmann shift ``median(x_i - y_j)`` with the Moses distribution-free interval."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    n, m = x.size, y.size
    if n == 0 or m == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, confidence, "hodges-lehmann", "ms", "no data")
    total = n * m
    mid_lo = kth_pairwise_difference(x, y, (total + 1) // 2)
    mid_hi = kth_pairwise_difference(x, y, (total + 2) // 2)
    est = (mid_lo + mid_hi) / 2
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    c = int(math.floor(total / 2 - z * math.sqrt(total * (n + m + 1) / 12.0)))
    if c < 1:
        return Estimate(est, -math.inf, math.inf, min(n, m), confidence, "hodges-lehmann/moses", "ms",
                        "samples too small for an interval")
    lo = kth_pairwise_difference(x, y, c)
    hi = kth_pairwise_difference(x, y, total + 1 - c)
    return Estimate(est, lo, hi, min(n, m), confidence, "hodges-lehmann/moses", "ms")


def cliffs_delta_from_u(u_x: float, n: int, m: int) -> float:
    """Cliff's delta ``P(X > Y) - P(X < Y)`` from the Mann–Whitney U of x (ties count 1/2)."""
    return 2.0 * u_x / (n * m) - 1.0


def bootstrap_quantile_diffs(candidate: np.ndarray, baseline: np.ndarray, qs: Sequence[float],
                             confidence: float = 0.95, n_resamples: int = 999,
                             seed: int = 0) -> dict[float, Estimate]:
    """Percentile-bootstrap intervals of ``Q_q(candidate) - Q_q(baseline)`` for several q at once
    (one ``scipy.stats.bootstrap`` call, type-7 quantiles, the samples resampled independently)."""
    c, b = np.asarray(candidate, float), np.asarray(baseline, float)
    qs = list(qs)
    if c.size < 2 or b.size < 2:
        return {q: Estimate(math.nan, math.nan, math.nan, int(min(c.size, b.size)), confidence,
                            "bootstrap", "ms", "no data") for q in qs}

    def stat(cc: np.ndarray, bb: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.quantile(cc, qs, axis=axis) - np.quantile(bb, qs, axis=axis)

    res = sps.bootstrap((c, b), stat, n_resamples=n_resamples, confidence_level=confidence,
                        method="percentile", vectorized=True, batch=25,
                        rng=np.random.default_rng(seed))
    point = stat(c, b)
    lo = np.atleast_1d(res.confidence_interval.low)
    hi = np.atleast_1d(res.confidence_interval.high)
    return {q: Estimate(float(point[i]), float(lo[i]), float(hi[i]), int(min(c.size, b.size)), confidence,
                        "bootstrap", "ms") for i, q in enumerate(qs)}


def bootstrap_quantile_diff(candidate: np.ndarray, baseline: np.ndarray, q: float,
                            confidence: float = 0.95, n_resamples: int = 999,
                            seed: int = 0) -> Estimate:
    """Percentile-bootstrap interval of ``Q_q(candidate) - Q_q(baseline)``."""
    return bootstrap_quantile_diffs(candidate, baseline, [q], confidence, n_resamples, seed)[q]
