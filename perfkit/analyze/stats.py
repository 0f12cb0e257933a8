"""Statistics that performance engineers trust, as pure functions over arrays and frames.

Every estimate carries its sample count ``n`` and the confidence level of its
interval (:class:`Estimate`). Nothing here touches the store: the functions that
read a run from DuckDB live in :mod:`perfkit.store.runs` and hand their
aggregates to these.

Definitions stated once, here:

* Percentiles and their intervals: :mod:`perfkit.quantiles`.
* An SLO ``P(q) <= X ms`` is *met* when the upper confidence bound of the fraction
  of requests slower than X (Clopper–Pearson) is at most ``1 - q``, *missed* when
  the lower bound is above it, else *inconclusive* (too few requests to say).
* Goodput: requests per second that succeeded *and* met every latency SLO given.
* Availability, window-based: the fraction of 1-s windows (by intended send time)
  that held at least one request and whose success ratio was at least the
  threshold; request-weighted availability is ok / all requests. Both are reported.
* MTTR: for each fault episode (a run of bad windows), the time from its first
  bad window to the start of the first stretch of ``sustain_s`` consecutive good
  windows; the mean over episodes.
* Multiple testing: Benjamini–Hochberg (false discovery rate, the root-cause
  correlation scan).
* Change points: :mod:`perfkit.analyze.changepoints` (within a run and across runs).
* Batch efficiency: from a batch-size histogram, mean achieved batch size =
  sum / count (requests per inference call), efficiency = mean / max batch, and
  padding waste = 1 - efficiency, i.e. the share of batch slots that would run
  empty if every call executed at the maximum batch shape.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from perfkit.quantiles import Estimate, proportion_ci, quantile_ci


def mean_ci(x: Sequence[float] | np.ndarray, confidence: float = 0.95, unit: str = "") -> Estimate:
    """Mean with a Student-t interval (for roughly normal quantities: means of many requests)."""
    arr = np.asarray(x, dtype=float)
    arr = arr[~np.isnan(arr)]
    n = int(arr.size)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, confidence, "t", unit, "no data")
    m = float(arr.mean())
    if n < 2:
        return Estimate(m, math.nan, math.nan, n, confidence, "t", unit, "one sample")
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1) * arr.std(ddof=1) / math.sqrt(n))
    return Estimate(m, m - half, m + half, n, confidence, "t", unit)


# --------------------------------------------------------------------------- SLOs and goodput

@dataclass(frozen=True)
class SloResult:
    """One SLO checked against a run: the observed quantile and the verdict."""

    metric: str
    quantile: float
    threshold_ms: float
    observed: Estimate
    over_fraction: Estimate
    verdict: str  # met | missed | inconclusive | no data

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "quantile": self.quantile, "threshold_ms": self.threshold_ms,
                "observed": self.observed.to_dict(), "over_fraction": self.over_fraction.to_dict(),
                "verdict": self.verdict}


def evaluate_slo(x: Sequence[float] | np.ndarray, threshold_ms: float, quantile: float = 0.99,
                 metric: str = "latency_ms", confidence: float = 0.95) -> SloResult:
    """Check ``P(quantile) <= threshold_ms`` with a stated confidence (see module doc)."""
    arr = np.asarray(x, dtype=float)
    arr = arr[~np.isnan(arr)]
    n = int(arr.size)
    observed = quantile_ci(arr, quantile, confidence)
    over = proportion_ci(int((arr > threshold_ms).sum()), n, confidence)
    allowed = 1.0 - quantile
    if n == 0:
        verdict = "no data"
    elif over.hi <= allowed:
        verdict = "met"
    elif over.lo > allowed:
        verdict = "missed"
    else:
        verdict = "inconclusive"
    return SloResult(metric, quantile, threshold_ms, observed, over, verdict)


def slo_verdict_from_counts(n: int, over: int, quantile: float, confidence: float = 0.95) -> str:
    """The same verdict as :func:`evaluate_slo` from counts (for SQL-side aggregation)."""
    if n == 0:
        return "no data"
    est = proportion_ci(over, n, confidence)
    allowed = 1.0 - quantile
    return "met" if est.hi <= allowed else ("missed" if est.lo > allowed else "inconclusive")


def goodput(frame: pd.DataFrame, duration_s: float, slos_ms: Mapping[str, float],
            confidence: float = 0.95) -> dict[str, Any]:
    """Requests per second that succeeded and met every per-request SLO in ``slos_ms``.

    ``frame`` has ``error_kind`` (NULL = ok) and the columns named in ``slos_ms``
    (e.g. ``{"latency_ms": 200, "ttft_ms": 500, "tpot_ms": 50}``). A request with a
    missing value for a named column (no first token) does not count as good.
    """
    n = len(frame)
    good = frame["error_kind"].isna() if "error_kind" in frame else pd.Series(True, index=frame.index)
    for col, limit in slos_ms.items():
        good &= frame[col].le(limit).fillna(False)
    k = int(good.sum())
    share = proportion_ci(k, n, confidence)
    rate = k / duration_s if duration_s > 0 else math.nan
    return {"goodput_rps": rate, "good_requests": k, "requests": n, "duration_s": duration_s,
            "good_fraction": share.to_dict(), "slos_ms": dict(slos_ms)}


# --------------------------------------------------------------------------- availability and MTTR

def mark_windows(windows: pd.DataFrame, success_threshold: float = 0.99,
                 p99_limit_ms: float | None = None) -> pd.DataFrame:
    """Add ``good`` to a per-window frame (``window_s``, ``requests``, ``ok``[, ``p99_ms``]).

    A window is good when it held requests, its success ratio is at least
    ``success_threshold`` and, when ``p99_limit_ms`` is given, its P99 is within it.
    Windows without requests are kept with ``good = NaN`` (no evidence either way).
    """
    w = windows.sort_values("window_s").reset_index(drop=True).copy()
    ratio = w["ok"] / w["requests"].where(w["requests"] > 0)
    good = ratio >= success_threshold
    if p99_limit_ms is not None and "p99_ms" in w:
        good &= w["p99_ms"].le(p99_limit_ms)
    w["success_ratio"] = ratio
    w["good"] = good.astype(float).where(w["requests"] > 0)
    return w


def availability(windows: pd.DataFrame, success_threshold: float = 0.99,
                 p99_limit_ms: float | None = None, confidence: float = 0.95) -> dict[str, Estimate]:
    """Window-based and request-weighted availability (definitions in the module doc)."""
    w = mark_windows(windows, success_threshold, p99_limit_ms)
    judged = w["good"].dropna()
    by_window = proportion_ci(int(judged.sum()), int(judged.size), confidence)
    by_request = proportion_ci(int(w["ok"].sum()), int(w["requests"].sum()), confidence)
    return {"window": by_window, "request": by_request}


@dataclass(frozen=True)
class FaultEpisode:
    onset_s: float
    recovered_s: float | None  # None: not recovered before the run ended
    bad_windows: int

    @property
    def ttr_s(self) -> float | None:
        return None if self.recovered_s is None else self.recovered_s - self.onset_s


def fault_episodes(windows: pd.DataFrame, success_threshold: float = 0.99,
                   p99_limit_ms: float | None = None, sustain_s: int = 3,
                   width_s: float = 1.0) -> list[FaultEpisode]:
    """Fault episodes: onset at the first bad window, recovery at the first of ``sustain_s`` good ones.

    Windows without requests neither break nor extend a recovery stretch.
    """
    w = mark_windows(windows, success_threshold, p99_limit_ms)
    w = w[w["good"].notna()]
    t = w["window_s"].to_numpy(dtype=float)
    g = w["good"].to_numpy(dtype=bool)
    episodes: list[FaultEpisode] = []
    i, n = 0, len(g)
    while i < n:
        if g[i]:
            i += 1
            continue
        onset, bad = t[i], 0
        j = i
        recovered = None
        while j < n:
            if not g[j]:
                bad += 1
                j += 1
                continue
            k = j
            while k < n and g[k] and k - j < sustain_s:
                k += 1
            if k - j >= sustain_s:
                recovered = t[j]
                break
            if k >= n:  # the run ended inside a too-short good stretch
                break
            j = k
        episodes.append(FaultEpisode(float(onset), None if recovered is None else float(recovered), bad))
        if recovered is None:
            break
        i = j
    return episodes


def mttr(episodes: Sequence[FaultEpisode], confidence: float = 0.95) -> Estimate:
    """Mean time to recovery over recovered episodes, t-interval when there are several."""
    ttrs = [e.ttr_s for e in episodes if e.ttr_s is not None]
    unrecovered = sum(1 for e in episodes if e.ttr_s is None)
    est = mean_ci(ttrs, confidence, unit="s")
    note = f"{unrecovered} episode(s) not recovered before the run ended" if unrecovered else est.note
    return Estimate(est.value, est.lo, est.hi, est.n, confidence, "t over episodes", "s", note)


# --------------------------------------------------------------------------- batching

def histogram_from_buckets(buckets: Mapping[float, float], total_sum: float,
                           total_count: float) -> dict[str, Any]:
    """Normalize a cumulative Prometheus histogram (``le`` -> count) into counts per bucket."""
    les = sorted(buckets)
    cum = np.maximum.accumulate(np.array([float(buckets[le]) for le in les]))
    per = np.diff(np.concatenate([[0.0], cum]))
    return {"le": les, "cumulative": cum.tolist(), "count_per_bucket": per.tolist(),
            "sum": float(total_sum), "count": float(total_count)}


def batch_efficiency(total_sum: float, total_count: float, max_batch: int,
                     buckets: Mapping[float, float] | None = None) -> dict[str, Any]:
    """Mean achieved batch size against the maximum, padding waste and requests per call.

    ``total_sum``/``total_count`` are the increase of the batch-size histogram's
    ``_sum`` and ``_count`` over the run (items and inference calls); ``buckets``
    its cumulative ``le`` counts, used for the share of calls that ran full.
    """
    calls = float(total_count)
    if calls <= 0:
        return {"inference_calls": 0, "requests": float(total_sum), "mean_batch_size": math.nan,
                "max_batch": max_batch, "efficiency": math.nan, "padding_waste": math.nan,
                "full_batch_share": math.nan}
    mean = float(total_sum) / calls
    eff = mean / max_batch if max_batch else math.nan
    full = math.nan
    if buckets:
        les = sorted(buckets)
        below = [le for le in les if le < max_batch - 0.5]
        if below and math.isfinite(max_batch):
            full = 1.0 - float(buckets[below[-1]]) / calls
    return {"inference_calls": int(round(calls)), "requests": float(total_sum),
            "mean_batch_size": mean, "requests_per_call": mean, "max_batch": max_batch,
            "efficiency": eff, "padding_waste": 1.0 - eff if math.isfinite(eff) else math.nan,
            "full_batch_share": full}


# --------------------------------------------------------------------------- queueing

def littles_law(mean_in_flight: float, arrival_rate_rps: float, mean_latency_ms: float,
                tolerance: float = 0.25) -> dict[str, Any]:
    """Little's law check: L (measured in-flight) against lambda x W.

    ``relative_gap`` = (L_measured - L_predicted) / L_predicted; consistent when
    its magnitude is within ``tolerance``. A large positive gap means requests
    sit somewhere the client's clock does not see (or the gauge counts other
    traffic); a large negative gap means the server sees fewer requests than the
    client sent (a proxy queue, dropped connections).
    """
    predicted = arrival_rate_rps * mean_latency_ms / 1000.0
    gap = (mean_in_flight - predicted) / predicted if predicted > 0 else math.nan
    return {"L_measured": mean_in_flight, "L_predicted": predicted, "arrival_rate_rps": arrival_rate_rps,
            "mean_latency_ms": mean_latency_ms, "relative_gap": gap,
            "consistent": bool(math.isfinite(gap) and abs(gap) <= tolerance), "tolerance": tolerance}


# --------------------------------------------------------------------------- multiple testing

def benjamini_hochberg(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values (false discovery rate over many tests)."""
    p = np.asarray(pvalues, float)
    n = p.size
    if n == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * n / (np.arange(n) + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(q, 1.0)
    return out


def lagged_spearman(latency: pd.Series, others: pd.DataFrame, max_lag: int = 5,
                    min_overlap: int = 10) -> pd.DataFrame:
    """Spearman rho of ``latency[t]`` with each column at ``t - lag``, lags -max_lag..max_lag.

    A positive lag means the series leads latency by ``lag`` windows. Returns
    ``series, lag, rho, p, n`` and ``q``, the Benjamini–Hochberg q-value over
    every (series, lag) tested.
    """
    rows = []
    for col in others.columns:
        s = others[col]
        for lag in range(-max_lag, max_lag + 1):
            pair = pd.concat([latency.rename("lat"), s.shift(lag).rename("x")], axis=1).dropna()
            if len(pair) < min_overlap or pair["x"].nunique() < 3 or pair["lat"].nunique() < 3:
                continue
            rho, p = sps.spearmanr(pair["lat"], pair["x"])
            if math.isfinite(rho):
                rows.append({"series": col, "lag": lag, "rho": float(rho), "p": float(p), "n": len(pair)})
    frame = pd.DataFrame(rows, columns=["series", "lag", "rho", "p", "n"])
    frame["q"] = benjamini_hochberg(frame["p"].to_numpy()) if len(frame) else []
    return frame


# --------------------------------------------------------------------------- change points

