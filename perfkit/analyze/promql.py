"""PromQL's maths over frames and arrays: ``histogram_quantile``, ``rate``/``increase``, alignment.

* :func:`histogram_quantile` follows Prometheus' ``bucketQuantile``
  (promql/quantile.go) exactly; :func:`histogram_quantile_frame` applies it per
  timestamp (and group) to ``*_bucket`` samples, optionally after :func:`rate`.
* :func:`rate` / :func:`increase` follow Prometheus' ``extrapolatedRate``
  (promql/functions.go, 3.x range semantics: samples in ``(t - window, t]``):
  counter resets add the pre-reset value, the result is extrapolated towards
  the window edges when the first/last sample lies within 1.1 average sample
  intervals of them (else by half an interval), and never below the counter's
  zero point. Fewer than two samples in a window give no value (NaN).
* :func:`align_series` puts one metric's samples on a time grid: gauges as step
  means held for at most one sampling interval, counters as per-second rates.

Nothing here reads the store: :mod:`perfkit.analyze.telemetry` does, and hands
its frames to these functions.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

# --------------------------------------------------------------------------- quantiles


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]] | dict[float, float]) -> float:
    """φ-quantile from cumulative ``(upper_bound, count)`` buckets, as Prometheus computes it.

    q<0 -> -Inf, q>1 -> +Inf, NaN -> NaN; buckets sorted by bound; highest bound
    not +Inf -> NaN; equal bounds merged (counts added); counts that differ from
    the previous by a relative 1e-12 or less are made equal, then any decrease
    is forced upward; fewer than 2 buckets or 0 observations -> NaN; a rank in
    the +Inf bucket -> the second-highest bound; in the first bucket the lower
    edge is 0 if its bound is > 0 (else the bound itself is returned); linear
    interpolation otherwise.
    """
    if isinstance(buckets, dict):
        items = [(float(k), float(v)) for k, v in buckets.items()]
    else:
        items = [(float(le), float(c)) for le, c in buckets]
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if not items:
        return math.nan
    items.sort(key=lambda b: b[0])
    if not math.isinf(items[-1][0]) or items[-1][0] < 0:
        return math.nan
    merged: list[list[float]] = []
    for le, c in items:  # coalesceBuckets
        if merged and merged[-1][0] == le:
            merged[-1][1] += c
        else:
            merged.append([le, c])
    prev = merged[0][1]  # correctPrecisionErrors(tolerance 1e-12)
    for b in merged[1:]:
        delta = abs(b[1] - prev)
        if delta == 0:
            continue
        if delta / b[1] <= 1e-12:
            b[1] = prev
        else:
            prev = b[1]
    top = merged[0][1]  # ensureMonotonic
    for b in merged[1:]:
        if b[1] > top:
            top = b[1]
        elif b[1] < top:
            b[1] = top
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    at = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if at == len(merged) - 1:
        return merged[-2][0]
    if at == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[at][0], merged[at][1]
    if at > 0:
        start = merged[at - 1][0]
        count -= merged[at - 1][1]
        rank -= merged[at - 1][1]
    return start + (end - start) * (rank / count)


def quantile(q: float, values: Sequence[float]) -> float:
    """PromQL's ``quantile()`` aggregation over plain values (rank q·(n−1), type 7)."""
    if len(values) == 0 or math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    v = np.sort(np.asarray(values, dtype=float))
    rank = q * (len(v) - 1)
    lo = max(0, math.floor(rank))
    hi = min(len(v) - 1, lo + 1)
    w = rank - math.floor(rank)
    return float(v[lo] * (1 - w) + v[hi] * w)


def histogram_quantile_frame(q: float, buckets: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Apply :func:`histogram_quantile` per timestamp (and ``by`` groups).

    ``buckets`` has columns ``ts_unix_s``, ``le`` (text or number) and ``value``
    (bucket counts, or their rates), plus the ``by`` columns. Buckets of the same
    ``le`` within a group and timestamp are summed first, like ``sum by (le)``.
    Returns ``ts_unix_s``, the ``by`` columns, ``value`` (the quantile) and
    ``observations`` (the +Inf bucket's count: the n behind the estimate).
    """
    cols = ["ts_unix_s", *by]
    if buckets.empty:
        return pd.DataFrame(columns=[*cols, "value", "observations"])
    frame = buckets.assign(le=pd.to_numeric(buckets["le"].replace({"+Inf": "inf", "-Inf": "-inf"})))
    summed = frame.groupby([*cols, "le"], dropna=False, sort=False)["value"].sum().reset_index()
    rows = []
    for key, grp in summed.groupby(cols, sort=True, dropna=False):
        pairs = list(zip(grp["le"].to_numpy(), grp["value"].to_numpy()))
        inf = [c for le, c in pairs if math.isinf(le) and le > 0]
        key = key if isinstance(key, tuple) else (key,)
        rows.append((*key, histogram_quantile(q, pairs), float(inf[0]) if inf else math.nan))
    return pd.DataFrame(rows, columns=[*cols, "value", "observations"])


# --------------------------------------------------------------------------- rate


def _extrapolated(ts: np.ndarray, values: np.ndarray, at: np.ndarray, window_s: float,
                  is_rate: bool) -> np.ndarray:
    ts = np.asarray(ts, dtype=float)
    values = np.asarray(values, dtype=float)
    order = np.argsort(ts, kind="stable")
    ts, values = ts[order], values[order]
    at = np.asarray(at, dtype=float)
    out = np.full(at.shape, np.nan)
    if len(ts) < 2:
        return out
    drops = np.zeros_like(values)
    drops[1:] = np.where(values[1:] < values[:-1], values[:-1], 0.0)
    adjusted = values + np.cumsum(drops)  # reset-corrected counter
    lo = np.searchsorted(ts, at - window_s, side="right")  # (t - window, t]
    hi = np.searchsorted(ts, at, side="right") - 1
    ok = (hi - lo) >= 1
    if not ok.any():
        return out
    lo, hi, t = lo[ok], hi[ok], at[ok]
    result = adjusted[hi] - adjusted[lo]
    first_t, last_t = ts[lo], ts[hi]
    sampled = last_t - first_t
    avg = sampled / (hi - lo)
    to_start = first_t - (t - window_s)
    to_end = t - last_t
    threshold = avg * 1.1
    to_start = np.where(to_start >= threshold, avg / 2, to_start)
    first_v = values[lo]
    with np.errstate(divide="ignore", invalid="ignore"):
        to_zero = np.where((result > 0) & (first_v >= 0), sampled * (first_v / result), np.inf)
    to_start = np.minimum(to_start, to_zero)
    to_end = np.where(to_end >= threshold, avg / 2, to_end)
    factor = (sampled + to_start + to_end) / sampled
    if is_rate:
        factor = factor / window_s
    out[ok] = result * factor
    return out


def rate(ts: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray,
         at: Sequence[float] | np.ndarray, window_s: float) -> np.ndarray:
    """Per-second rate of a counter at each time in ``at`` over ``(t - window_s, t]`` (PromQL)."""
    return _extrapolated(np.asarray(ts), np.asarray(values), np.asarray(at), window_s, True)


def increase(ts: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray,
             at: Sequence[float] | np.ndarray, window_s: float) -> np.ndarray:
    """Increase of a counter over ``(t - window_s, t]``, extrapolated like PromQL's ``increase``."""
    return _extrapolated(np.asarray(ts), np.asarray(values), np.asarray(at), window_s, False)


def rate_frame(frame: pd.DataFrame, window_s: float, step_s: float | None = None,
               by: Sequence[str] = ("series_id",)) -> pd.DataFrame:
    """:func:`rate` per group of a long frame (``ts_unix_s``, ``value``, ``by`` columns).

    Evaluated at each group's own sample times, or on a shared grid of ``step_s``.
    """
    if frame.empty:
        return frame.assign(value=pd.Series(dtype=float))
    parts = []
    grid = None
    if step_s:
        t0, t1 = frame["ts_unix_s"].min(), frame["ts_unix_s"].max()
        grid = np.arange(math.ceil(t0 / step_s) * step_s, t1 + step_s / 2, step_s)
    for key, grp in frame.groupby(list(by), sort=False, dropna=False):
        at = grid if grid is not None else grp["ts_unix_s"].to_numpy()
        r = rate(grp["ts_unix_s"].to_numpy(), grp["value"].to_numpy(), at, window_s)
        key = key if isinstance(key, tuple) else (key,)
        part = pd.DataFrame({"ts_unix_s": at, "value": r})
        for col, val in zip(by, key):
            part[col] = val
        parts.append(part.dropna(subset=["value"]))
    return pd.concat(parts, ignore_index=True) if parts else frame.iloc[0:0]


def median_spacing(frame: pd.DataFrame) -> float:
    """Median time between consecutive samples of the same series (0 if unknown)."""
    gaps = frame.sort_values(["series_id", "ts_unix_s"]).groupby("series_id")["ts_unix_s"].diff()
    gaps = gaps.dropna()
    return float(gaps.median()) if len(gaps) else 0.0


def is_counter(frame: pd.DataFrame, name: str) -> bool:
    """A metric read as a counter: typed so in the store, or named like one (``_sum``, ``_count``, ``_total``)."""
    return bool((frame["type"] == "counter").all()) or name.endswith(("_sum", "_count", "_total"))


def align_series(frame: pd.DataFrame, name: str, start: float, grid: pd.Series, step_s: float,
                 rate_window_s: float | None = None) -> dict[str, pd.Series]:
    """One metric's samples (``series_id, ts_unix_s, value, type``) as columns on ``grid`` (``t_s``).

    A counter becomes ``<name>_per_s``: its per-second :func:`rate` over
    ``rate_window_s`` (default: 2 steps or 2.5 sampling intervals), averaged per
    step and summed across series. A gauge becomes ``<name>``, the step mean
    averaged across series and held over the steps between two samples (at most
    one sampling interval), and ``<name>_series``, how many series each step holds.
    """
    if is_counter(frame, name):
        window = rate_window_s or max(2 * step_s, 2.5 * median_spacing(frame))
        rates = rate_frame(frame, window, step_s=step_s, by=("series_id",))
        rates = rates.assign(t_s=np.floor((rates["ts_unix_s"] - start) / step_s) * step_s)
        per_step = rates.groupby(["t_s", "series_id"])["value"].mean().groupby("t_s").sum()
        return {f"{name}_per_s": grid.map(per_step)}
    frame = frame.assign(t_s=np.floor((frame["ts_unix_s"] - start) / step_s) * step_s)
    per_series = frame.groupby(["t_s", "series_id"])["value"].mean()
    means = grid.map(per_series.groupby("t_s").mean())
    hold = max(0, math.ceil(median_spacing(frame) / step_s) - 1)
    return {name: means.ffill(limit=hold) if hold else means,
            f"{name}_series": grid.map(per_series.groupby("t_s").size())}
