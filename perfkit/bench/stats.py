"""MLPerf-LoadGen-style validity of a run: early stopping, and the generator's schedule lag.

Percentiles and their intervals are :mod:`perfkit.quantiles` (one definition for
every stage); this module holds what only the bench summary needs: LoadGen's
early-stopping arithmetic (is a P99 claim backed by enough queries?) and the
schedule-lag digest that says whether the load generator kept up.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

from perfkit.quantiles import percentiles


def early_stopping_odds(h: int, t: int, p: float, d: float = 0.0) -> float:
    """P[Binomial(h + t, 1 - (p - d)) <= t] = I_{p-d}(h, t + 1) (regularized incomplete beta).

    The chance that a system whose true p-quantile misses the bound would still show
    only ``t`` of ``h + t`` queries over it. Same expression as LoadGen's early_stopping.cc.
    """
    if h <= 0:
        return 1.0
    return float(special.betainc(h, t + 1, p - d))


def min_passing_queries(t: int, p: float, confidence: float = 0.99, d: float = 0.0) -> int:
    """Smallest h with P[Binomial(h + t, 1 - p) <= t] <= 1 - c (LoadGen's MinPassingQueriesFinder).

    With t = 0 this is ceil(log(1 - c) / log(p)): 459 for P99 at c = 0.99, 44 for P90.
    The total number of queries needed is ``h + t``.
    """
    target = 1.0 - confidence
    lo = max(1, int(math.floor(t * (p - d) / (1 - p + d))))
    hi = max(lo + 1, int(math.ceil(math.log(target) / math.log(p - d))) + 1)
    while early_stopping_odds(hi, t, p, d) > target:  # grow the bracket
        hi *= 2
    while lo < hi:  # smallest h passing, by bisection (odds fall as h grows)
        mid = (lo + hi) // 2
        if early_stopping_odds(mid, t, p, d) <= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def min_queries(t: int, p: float, confidence: float = 0.99) -> int:
    """Total queries (h + t) needed to claim the p-quantile with ``t`` queries over it."""
    return min_passing_queries(t, p, confidence) + t


def early_stopping_estimate(values: np.ndarray, p: float, confidence: float = 0.99) -> dict[str, Any]:
    """LoadGen's early-stopping percentile estimate (results.cc, SingleStream), exactly.

    t is the largest count (t >= 1) of "overlatency" queries with n >= h_min(t) + t;
    the estimate is the t-th highest value (LoadGen: ``sample_latencies[n - t]``),
    and LoadGen reports it as "would discard t - 1 highest latency queries". With
    probability >= c the true p-quantile is at most the estimate. ``met`` is False
    when n < h_min(1) + 1 (662 queries for P99, 64 for P90 at c = 0.99).
    """
    v = np.asarray(values, dtype=np.float64)
    v = np.sort(v[~np.isnan(v)])
    n = int(v.size)
    need = min_queries(1, p, confidence)
    out: dict[str, Any] = {"percentile": p, "confidence": confidence, "n": n, "min_queries": need}
    if n < need:
        out.update({"met": False, "discarded": None, "bound": None})
        return out
    lo, hi = 1, n  # largest t with min_queries(t) <= n (min_queries grows with t)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if min_queries(mid, p, confidence) <= n:
            lo = mid
        else:
            hi = mid - 1
    out.update({"met": True, "discarded": lo - 1, "bound": float(v[n - lo])})
    return out


def slo_early_stopping(values: np.ndarray, p: float, slo: float, confidence: float = 0.99) -> dict[str, Any]:
    """Does the run show, with confidence c, that the p-quantile is within ``slo``?

    t = number of values over the SLO; met when n >= h_min(t) + t (LoadGen's server test).
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    t = int((v > slo).sum())
    need = min_queries(t, p, confidence)
    return {"percentile": p, "slo": slo, "confidence": confidence, "n": int(v.size),
            "over_slo": t, "queries_needed": need, "met": bool(v.size >= need)}


def lag_summary(lag_ms: np.ndarray, late_ms: float = 5.0) -> dict[str, Any]:
    """p50/p99/max of schedule lag (actual minus intended send) and the share late by > late_ms."""
    v = np.asarray(lag_ms, dtype=np.float64)
    v = v[~np.isnan(v)]
    out: dict[str, Any] = percentiles(v, {"p50": 0.5, "p99": 0.99})
    out["late_fraction"] = float((v > late_ms).mean()) if v.size else None
    out["late_threshold_ms"] = late_ms
    return out
