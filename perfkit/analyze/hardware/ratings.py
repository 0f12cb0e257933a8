"""Ratings per workload profile, computed from metrics, never typed in.

For each metric ``m`` a device gets a normalized score ``s = m / max(m)`` (higher
is better) or ``s = min(m) / m`` (lower is better), in (0, 1]. A profile's score
is the weighted geometric mean ``exp(Σ w·ln s / Σ w)`` over the metrics that
device has, and its stars are ``max(1, ceil(5 × score))``: 5 stars within 20 %
of the best, one star below 20 % of it. Missing metrics are left out of the mean
(the ``basis`` column says which were used); a profile with none is not rated.
Rows whose figures are the datasheet estimate tier (their ``basis`` starts with
"estimate") get no star and take no part in any other row's normalisation.

The source article's star table (:data:`ARTICLE_STARS`) is kept here only to be
set beside the stars computed from MLPerf evidence
(:func:`perfkit.analyze.hardware.evidence.article_comparison`).
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd

from perfkit.analyze.hardware.catalog import is_estimate

#: profile -> {metric: (weight, higher_is_better)}. The article's three columns.
PROFILES: dict[str, dict[str, tuple[float, bool]]] = {
    "latency-sensitive": {"p99_at_load_ms": (0.5, False), "qps_at_slo": (0.5, True)},
    "throughput-first": {"peak_throughput": (0.7, True), "perf_per_w": (0.3, True)},
    "cost-sensitive": {"perf_per_usd_hour": (0.7, True), "perf_per_w": (0.3, True)},
}

#: A profile is rated only when a device has at least one of these metrics (else NaN):
#: a cost rating without a price, or a latency rating without any latency-bounded figure,
#: would only restate another profile.
PROFILE_REQUIRES: dict[str, tuple[str, ...]] = {
    "latency-sensitive": ("p99_at_load_ms", "qps_at_slo"),
    "throughput-first": ("peak_throughput",),
    "cost-sensitive": ("perf_per_usd_hour",),
}

RATING_FORMULA = (
    "s = m / max(m) (higher better) or min(m) / m (lower better); "
    "score = exp(sum(w * ln s) / sum(w)) over the metrics present; "
    "stars = max(1, ceil(5 * score)). Weights: "
    + "; ".join(f"{p}: " + ", ".join(f"{w:g}·{m}{'' if hi else ' (lower better)'}"
                                     for m, (w, hi) in spec.items())
                for p, spec in PROFILES.items())
)

#: The source article's table (section 3.1), filled stars as printed: its claims, for comparison only.
ARTICLE_STARS = {
    "A100 80GB": {"latency-sensitive": 5, "throughput-first": 4, "cost-sensitive": 2},
    "MI250X": {"latency-sensitive": 4, "throughput-first": 5, "cost-sensitive": 3},
    "Gaudi2": {"latency-sensitive": 3, "throughput-first": 4, "cost-sensitive": 4},
}

#: What an estimate row shows in place of stars.
NOT_RATED_ESTIMATE = "not rated (estimate)"

#: The columns a person reads first, in order (those a table has are kept).
SUMMARY_COLUMNS = ("basis", "runs", "results", "qps_at_slo", "p99_ci_low_ms", "p99_ci_high_ms", "requests_at_capacity",
                   "p99_at_load_ms", "peak_throughput", "units", "mean_power_w", "power_basis", "perf_per_w",
                   "price_hour_usd", "perf_per_usd_hour", *PROFILES)


def normalized_scores(values: pd.Series, higher_is_better: bool) -> pd.Series:
    """Each value relative to the best one, in (0, 1]; NaN (or non-positive) stays NaN."""
    v = pd.to_numeric(values, errors="coerce").astype(float)
    v = v.where(v > 0)
    if v.notna().sum() == 0:
        return v
    return v / v.max() if higher_is_better else v.min() / v


def stars(score: float | None) -> float:
    """``max(1, ceil(5 × score))`` for a score in (0, 1]; NaN for NaN."""
    if score is None or not np.isfinite(score):
        return math.nan
    return float(max(1, math.ceil(5 * score - 1e-9)))


def star_text(n: float) -> str:
    """``n`` filled stars out of five (``★★★☆☆``); empty for NaN."""
    return "" if not np.isfinite(n) else "★" * int(n) + "☆" * (5 - int(n))


def rate_profiles(metrics: pd.DataFrame,
                  profiles: Mapping[str, Mapping[str, tuple[float, bool]]] = PROFILES) -> pd.DataFrame:
    """Per hardware (row of ``metrics``, indexed by name): score, stars and basis per profile.

    Estimate rows (``metrics["basis"]`` in the estimate tier) are left out: no score, no star.
    """
    out = pd.DataFrame(index=metrics.index)
    if "basis" in metrics:
        metrics = metrics[~is_estimate(metrics["basis"])].reindex(metrics.index)
    for profile, spec in profiles.items():
        num = pd.Series(0.0, index=metrics.index)
        den = pd.Series(0.0, index=metrics.index)
        basis = pd.Series("", index=metrics.index, dtype=object)
        for metric, (weight, higher) in spec.items():
            if metric not in metrics:
                continue
            s = normalized_scores(metrics[metric], higher)
            have = s.notna()
            num[have] += weight * np.log(s[have])
            den[have] += weight
            basis[have] = basis[have].map(lambda b, m=metric: f"{b}+{m}" if b else m)
        score = np.exp(num / den.where(den > 0))
        needed = [m for m in PROFILE_REQUIRES.get(profile, ()) if m in metrics]
        if PROFILE_REQUIRES.get(profile):
            has_needed = metrics[needed].notna().any(axis=1) if needed else pd.Series(False, index=metrics.index)
            score = score.where(has_needed)
            basis = basis.where(has_needed, "")
        out[f"{profile}_score"] = score
        out[f"{profile}_stars"] = score.map(stars)
        out[f"{profile}_basis"] = basis
    return out


def comparison_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Metrics joined with their computed ratings, stars as text per profile."""
    table = metrics.join(rate_profiles(metrics))
    estimate = is_estimate(table["basis"]) if "basis" in table else pd.Series(False, index=table.index)
    for profile in PROFILES:
        table[profile] = table[f"{profile}_stars"].map(star_text).where(~estimate, NOT_RATED_ESTIMATE)
    return table


def summary_view(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison table cut to :data:`SUMMARY_COLUMNS` (ratings as stars)."""
    return table[[c for c in SUMMARY_COLUMNS if c in table.columns]]
