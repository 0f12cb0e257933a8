"""Intervals that respect autocorrelation within a run and variance between runs (pure, over arrays).

A run's requests are a time series: neighbours share a GC pause, a batch
boundary, a noisy neighbour, so n requests carry less information than n
independent values; and runs of one configuration differ from each other
(warm caches, the machine's other load, the order they ran in). Both enter
here:

* :func:`autocorrelation_time` and :func:`block_length` measure a run's
  dependence: the integrated autocorrelation time (Geyer's initial monotone
  sequence; ``n / tau`` is the effective sample size) and the Politis–White
  optimal block length (:func:`arch.bootstrap.optimal_block_length`). Both are
  computed on the *ranks* of the successful requests' values: the statistics
  judged are quantiles, whose dependence ranks carry, and a few huge outliers
  would otherwise dominate the autocovariances.
* :func:`bootstrap_run` draws stationary-bootstrap replicates of one run's
  P50, P99 and error share (:class:`arch.bootstrap.StationaryBootstrap`,
  blocks of random length with the measured mean, over all requests in
  schedule order so that failures keep their place).
* :func:`arm_replicates` and :func:`difference` form the hierarchical
  bootstrap of an A/B difference: per outer replicate each arm's runs are
  resampled with replacement, and each drawn run contributes one of its own
  within-run replicates. An arm's statistic is the mean over its runs of each
  run's statistic (the run is the unit of replication), so drawing from each
  run's bank of replicates is the same as re-running its block bootstrap. With
  one run in an arm the outer level has nothing to resample: the interval then
  holds the within-run variation only, and run-to-run variance is unknown.

Percentiles are the inverted CDF of :mod:`perfkit.quantiles`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from perfkit.quantiles import Estimate, rank_index

#: The statistics of a run, in the order of the replicate columns.
STATISTICS = ("p50", "p99", "error_rate")
QUANTILES = (0.5, 0.99)


@dataclass(frozen=True)
class RunSeries:
    """One run's requests in schedule order: metric values (NaN where failed or missing) and failure flags."""

    run_id: str
    values: np.ndarray
    failed: np.ndarray
    total: int | None = None         # requests in the run, when ``values`` is a subsample of it
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class RunBootstrap:
    """One run's statistics, its dependence and its bank of within-run bootstrap replicates."""

    run_id: str
    n: int                    # requests judged (all outcomes)
    n_ok: int                 # of which with a value
    n_effective: float        # n_ok / autocorrelation time
    block_length: float       # mean block length of the stationary bootstrap
    point: np.ndarray         # p50, p99, error share (STATISTICS order)
    replicates: np.ndarray    # (resamples, 3)
    total: int                # requests in the run (more than n when subsampled)
    labels: dict[str, str] = field(default_factory=dict)


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(x.size, dtype=float)
    ranks[order] = np.arange(x.size, dtype=float)
    return ranks


def autocorrelation_time(x: np.ndarray) -> float:
    """Integrated autocorrelation time ``1 + 2 sum rho_k`` (Geyer's initial monotone sequence), at least 1.

    An AR(1) series with coefficient phi has ``(1 + phi) / (1 - phi)``; independent values 1.
    """
    x = np.asarray(x, float)
    n = x.size
    if n < 4 or np.ptp(x) == 0:
        return 1.0
    x = x - x.mean()
    spec = np.fft.rfft(x, 2 * n)
    acov = np.fft.irfft(spec * np.conj(spec))[:n]
    rho = acov / acov[0]
    pairs = rho[: 2 * ((n - 1) // 2)].reshape(-1, 2).sum(axis=1)   # Gamma_m = rho_2m + rho_2m+1
    stop = np.flatnonzero(pairs <= 0)
    pairs = np.minimum.accumulate(pairs[: stop[0] if stop.size else pairs.size])
    return max(1.0, float(-1.0 + 2.0 * pairs.sum()))


def block_length(x: np.ndarray) -> float:
    """Politis–White optimal mean block length of the stationary bootstrap, within ``[1, n / 4]``."""
    from arch.bootstrap import optimal_block_length

    x = np.asarray(x, float)
    if x.size < 16 or np.ptp(x) == 0:
        return 1.0
    length = float(optimal_block_length(x)["stationary"].iloc[0])
    return float(min(max(length, 1.0) if math.isfinite(length) else 1.0, max(1.0, x.size / 4)))


def run_statistics(values: np.ndarray, failed: np.ndarray) -> np.ndarray:
    """P50, P99 (of the values present) and the failed share, rows of (k, n) at once; shape (k, 3)."""
    v = np.atleast_2d(values)
    f = np.atleast_2d(failed)
    out = np.full((v.shape[0], 3), np.nan)
    out[:, 2] = f.mean(axis=1) if f.shape[1] else np.nan
    present = ~np.isnan(v)
    counts = present.sum(axis=1)
    if (counts == v.shape[1]).all() and v.shape[1]:           # no gaps: partition at fixed ranks
        n = v.shape[1]
        ranks = [rank_index(n, q) - 1 for q in QUANTILES]
        part = np.partition(v, ranks, axis=1)
        out[:, 0], out[:, 1] = part[:, ranks[0]], part[:, ranks[1]]
        return out
    ordered = np.sort(v, axis=1)                               # NaN sort last
    for j, q in enumerate(QUANTILES):
        idx = np.clip(np.ceil(q * counts - 1e-9).astype(int), 1, None) - 1
        picked = np.take_along_axis(ordered, np.minimum(idx, v.shape[1] - 1)[:, None], axis=1)[:, 0]
        out[:, j] = np.where(counts > 0, picked, np.nan)
    return out


def bootstrap_run(series: RunSeries, resamples: int = 500, seed: int | np.random.SeedSequence = 0,
                  batch: int = 50) -> RunBootstrap:
    """Stationary-bootstrap replicates of a run's P50, P99 and error share (see the module doc)."""
    from arch.bootstrap import StationaryBootstrap

    values = np.asarray(series.values, float)
    failed = np.asarray(series.failed, bool)
    ok = values[~np.isnan(values)]
    n = values.size
    length = block_length(_ranks(ok))
    if failed.any() and not failed.all():
        length = max(length, block_length(failed.astype(float)))
    size = max(1, round(length))                  # arch takes a whole mean block length
    point = run_statistics(values, failed)[0]
    reps = np.empty((resamples, 3))
    if n == 0:
        reps[:] = np.nan
    else:
        rng = np.random.default_rng(seed)
        boot = StationaryBootstrap(size, np.arange(n), seed=rng)
        done = 0
        while done < resamples:
            k = min(batch, resamples - done)
            idx = np.stack([boot.update_indices() for _ in range(k)])
            reps[done:done + k] = run_statistics(values[idx], failed[idx])
            done += k
    return RunBootstrap(series.run_id, n, int(ok.size), ok.size / autocorrelation_time(_ranks(ok)) if ok.size else 0.0,
                        float(size), point, reps, int(series.total if series.total is not None else n),
                        dict(series.labels))


def arm_point(runs: Sequence[RunBootstrap]) -> np.ndarray:
    """An arm's statistics: the mean over its runs of each run's P50, P99 and error share."""
    return np.mean(np.stack([r.point for r in runs]), axis=0)


def arm_replicates(runs: Sequence[RunBootstrap], outer: int, rng: np.random.Generator) -> np.ndarray:
    """Hierarchical replicates of the arm's statistics, shape (outer, 3): runs drawn with replacement,
    each drawn run's statistics taken from one of its own within-run replicates."""
    bank = min(r.replicates.shape[0] for r in runs)
    stack = np.stack([r.replicates[:bank] for r in runs])         # (runs, bank, 3)
    k = len(runs)
    which = rng.integers(0, k, size=(outer, k)) if k > 1 else np.zeros((outer, 1), dtype=int)
    pick = rng.integers(0, bank, size=(outer, k))
    return stack[which, pick].mean(axis=1)


def difference(baseline: Sequence[RunBootstrap], candidate: Sequence[RunBootstrap], confidence: float = 0.90,
               outer: int = 2000, seed: int = 0) -> list[Estimate]:
    """``candidate - baseline`` of P50, P99 and error share, each with its hierarchical
    percentile-bootstrap interval at ``confidence`` (NaN where an arm has no values)."""
    rng = np.random.default_rng(seed)
    base, cand = arm_replicates(baseline, outer, rng), arm_replicates(candidate, outer, rng)
    point = arm_point(candidate) - arm_point(baseline)
    diffs = cand - base
    tail = (1.0 - confidence) / 2.0
    n = min(sum(r.n for r in baseline), sum(r.n for r in candidate))
    method = "hierarchical bootstrap" if len(baseline) > 1 and len(candidate) > 1 else "within-run block bootstrap"
    out = []
    for j, name in enumerate(STATISTICS):
        d = diffs[:, j]
        d = d[np.isfinite(d)]
        unit = "share" if name == "error_rate" else "ms"
        if not math.isfinite(point[j]) or d.size < outer // 2:
            out.append(Estimate(math.nan, math.nan, math.nan, n, confidence, method, unit, "no data"))
            continue
        lo, hi = np.quantile(d, [tail, 1.0 - tail])
        out.append(Estimate(float(point[j]), float(lo), float(hi), n, confidence, method, unit))
    return out
