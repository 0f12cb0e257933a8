"""Percentiles (and proportions) with their confidence intervals: the one implementation every stage uses.

Definition, stated once: the sample p-quantile is the *inverted CDF*
(Hyndman–Fan type 1), the smallest observed value x with ECDF(x) >= p, i.e. the
order statistic of 1-based rank ceil(p n). It is what DuckDB's ``quantile_disc``
returns and numpy's ``method="inverted_cdf"``, so every reported percentile is
an observed latency, and the SQL-backed reader (:mod:`perfkit.store.runs`)
gives the same numbers as the functions here (a test checks it).

Intervals are distribution-free: the exact order-statistic interval
``[X(l), X(u)]`` with ``P(l <= Binom(n, q) < u) >= confidence``
(:func:`order_stat_ranks`); Harrell–Davis or a percentile bootstrap on request.
Every estimate carries its sample count and confidence (:class:`Estimate`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping, Sequence

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pandas and scipy.stats take seconds to import: loaded where used
    import pandas as pd

PERCENTILE_DEFINITION = ("inverted_cdf: the smallest observed value x with ECDF(x) >= p "
                         "(Hyndman-Fan type 1, same as DuckDB quantile_disc), computed over every stored row")
#: The percentiles every summary and report shows, by key.
SUMMARY_PERCENTILES: dict[str, float] = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99, "p999": 0.999}


def percentiles(values: Sequence[float] | np.ndarray,
                which: Mapping[str, float] | None = None) -> dict[str, float | int | None]:
    """``{"n", "mean", "p50", ..., "max"}`` of ``values`` (NaNs dropped), exact, inverted CDF."""
    which = SUMMARY_PERCENTILES if which is None else which
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    out: dict[str, float | int | None] = {"n": int(v.size)}
    if v.size == 0:
        out.update({"mean": None, **{k: None for k in which}, "max": None})
        return out
    out["mean"] = float(v.mean())
    qs = np.quantile(v, list(which.values()), method="inverted_cdf")
    for key, q in zip(which, qs):
        out[key] = float(q)
    out["max"] = float(v.max())
    return out


@dataclass(frozen=True)
class Estimate:
    """A statistic with its interval, sample count and confidence level."""

    value: float
    lo: float
    hi: float
    n: int
    confidence: float
    method: str
    unit: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (infinite or missing bounds become ``None``)."""
        out = asdict(self)
        for key in ("value", "lo", "hi"):
            v = out[key]
            out[key] = None if v is None or not math.isfinite(v) else float(v)
        return out

    def fmt(self, digits: int = 1) -> str:
        """``"41.2 ms [40.1, 43.0] (n=6,000, 95%)"``."""
        def f(v: float) -> str:
            return f"{v:.{digits}f}" if math.isfinite(v) else ("∞" if v > 0 else ("-∞" if v < 0 else "n/a"))
        unit = f" {self.unit}" if self.unit else ""
        return (f"{f(self.value)}{unit} [{f(self.lo)}, {f(self.hi)}] "
                f"(n={self.n:,}, {self.confidence:.0%})")


# --------------------------------------------------------------------------- percentiles

def order_stat_ranks(n: int, q: float, confidence: float = 0.95) -> tuple[int, int, float]:
    """1-based ranks ``(l, u)`` of the exact distribution-free interval for the q-quantile.

    ``P(X(l) <= xi_q <= X(u)) = P(l <= B < u)`` with ``B ~ Binom(n, q)``. A rank
    of 0 means "no lower bound" (``-inf``) and ``n + 1`` "no upper bound"
    (``+inf``): the sample is too small for that side at this confidence. The
    third value is the interval's actual coverage.
    """
    from scipy import stats as sps

    if n <= 0:
        return 0, 1, 0.0
    alpha = 1.0 - confidence
    lo = int(sps.binom.ppf(alpha / 2, n, q))          # P(B < lo) <= alpha/2
    hi = int(sps.binom.ppf(1 - alpha / 2, n, q)) + 1  # P(B >= hi) <= alpha/2
    lo = max(lo, 0)
    hi = min(hi, n + 1)
    cover = float(sps.binom.cdf(hi - 1, n, q) - (sps.binom.cdf(lo - 1, n, q) if lo >= 1 else 0.0))
    return lo, hi, cover


def rank_index(n: int, q: float) -> int:
    """1-based rank of the sample q-quantile used throughout (inverted CDF: ceil(q n))."""
    return min(max(int(math.ceil(q * n - 1e-9)), 1), n)


def _order_stat(sorted_x: np.ndarray, rank: int) -> float:
    if rank <= 0:
        return -math.inf
    if rank > len(sorted_x):
        return math.inf
    return float(sorted_x[rank - 1])


def quantile_ci(
    x: Sequence[float] | np.ndarray,
    q: float,
    confidence: float = 0.95,
    method: str = "order",
    unit: str = "ms",
    n_resamples: int = 999,
    seed: int = 0,
) -> Estimate:
    """The q-quantile of ``x`` with a confidence interval.

    ``method``: ``"order"`` (exact order-statistic interval around the
    inverted-CDF sample quantile), ``"hd"`` (Harrell–Davis estimate, normal
    interval from its standard error) or ``"bootstrap"`` (percentile bootstrap of
    the type-7 quantile, ``scipy.stats.bootstrap``).
    """
    from scipy import stats as sps

    arr = np.asarray(x, dtype=float)
    arr = arr[~np.isnan(arr)]
    n = int(arr.size)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, confidence, method, unit, "no data")
    if method == "order":
        s = np.sort(arr)
        lo_r, hi_r, cover = order_stat_ranks(n, q, confidence)
        note = "" if 1 <= lo_r and hi_r <= n else "sample too small for a two-sided interval"
        return Estimate(_order_stat(s, rank_index(n, q)), _order_stat(s, lo_r), _order_stat(s, hi_r),
                        n, confidence, "order-statistic", unit, note)
    if method == "hd":
        from scipy.stats.mstats import hdquantiles, hdquantiles_sd

        value = float(hdquantiles(arr, prob=[q])[0])
        se = float(hdquantiles_sd(arr, prob=[q])[0]) if n > 1 else math.nan
        z = float(sps.norm.ppf(0.5 + confidence / 2))
        return Estimate(value, value - z * se, value + z * se, n, confidence, "harrell-davis", unit)
    if method == "bootstrap":
        if n < 2:
            return Estimate(float(arr[0]), math.nan, math.nan, n, confidence, "bootstrap", unit,
                            "one sample")
        res = sps.bootstrap((arr,), lambda a, axis: np.quantile(a, q, axis=axis),
                            n_resamples=n_resamples, confidence_level=confidence,
                            method="percentile", vectorized=True, batch=50,
                            rng=np.random.default_rng(seed))
        return Estimate(float(np.quantile(arr, q)), float(res.confidence_interval.low),
                        float(res.confidence_interval.high), n, confidence, "bootstrap", unit)
    raise ValueError(f"unknown quantile method {method!r} (order, hd, bootstrap)")


def percentile_table(x: Sequence[float] | np.ndarray, qs: Iterable[float] = (0.5, 0.9, 0.95, 0.99, 0.999),
                     confidence: float = 0.95, method: str = "order", unit: str = "ms") -> pd.DataFrame:
    """One row per quantile: value, interval, n, confidence, method."""
    import pandas as pd

    rows = []
    for q in qs:
        est = quantile_ci(x, q, confidence, method, unit)
        rows.append({"quantile": q, **est.to_dict()})
    return pd.DataFrame(rows)


def proportion_ci(k: int, n: int, confidence: float = 0.95) -> Estimate:
    """k successes in n as a proportion with its exact Clopper–Pearson interval."""
    from scipy import stats as sps

    if n <= 0:
        return Estimate(math.nan, math.nan, math.nan, 0, confidence, "clopper-pearson", "ratio", "no data")
    ci = sps.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="exact")
    return Estimate(k / n, float(ci.low), float(ci.high), int(n), confidence, "clopper-pearson", "ratio")
