"""The Hodges–Lehmann shift between two samples, as pure functions over arrays.

``median(x_i - y_j)`` with the Moses distribution-free interval, computed
without forming the n*m pairwise differences. It treats every value as
independent, so it describes a shift (the root-cause proxy rule uses it); A/B
verdicts, which must respect autocorrelation and run-to-run variance, come from
:mod:`perfkit.analyze.bootstrap` instead.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from perfkit.quantiles import Estimate


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
