"""Change points: the one home for finding where a series' level shifts (pure).

Two detectors, for two kinds of series:

* :func:`breakpoints`: within one run, over many time windows (hundreds to
  thousands of points). PELT with the l2 cost and a penalty of
  2 sigma^2 ln n (sigma from the MAD of differences), through ruptures'
  KernelCPD in C. Used by the root-cause rules.
* :func:`tested_change_points`: across runs, over a case's history (a few to a
  few dozen points, one per run), where a false alarm fails a pipeline.
  E-Divisive style: divisive binary segmentation (ruptures' Binseg, l2 cost on
  the logarithm so that noise and steps are relative), each split kept only
  when fewer than ``alpha`` of permuted copies of the segment split as well,
  then the two halves searched the same way. Permutations use a fixed seed,
  so a gate gives the same answer twice. Apache Otava and MongoDB's
  signal-processing-algorithms pin numpy/scipy versions this project cannot
  use (``numpy==2.2.*`` / ``numpy<2``), and ruptures has no significance test:
  hence the permutation test here, calibrated by
  ``benchmarks/trend_calibration.py``.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

#: Significance of each split (permutation test); see benchmarks/trend_calibration.py.
DEFAULT_ALPHA = 0.05
#: Fewest points (runs) on either side of a change.
DEFAULT_MIN_SIZE = 3
DEFAULT_PERMUTATIONS = 199


def breakpoints(signal: Sequence[float] | np.ndarray, min_size: int = 3,
                  pen: float | None = None) -> list[int]:
    """PELT (l2 cost) breakpoints of a 1-D signal, penalty 2 sigma^2 ln n with sigma from the MAD of diffs."""
    import ruptures as rpt

    x = np.asarray(signal, float)
    x = x[np.isfinite(x)]
    n = x.size
    if n < 2 * min_size + 1:
        return []
    sigma = float(np.median(np.abs(np.diff(x) - np.median(np.diff(x)))) * 1.4826 / math.sqrt(2))
    if sigma <= 0:
        sigma = float(np.std(x)) or 1.0
    if pen is None:
        pen = 2 * sigma ** 2 * math.log(n)
    # ruptures' KernelCPD with the linear kernel is the l2 cost; with a penalty it is solved by
    # PELT in C (rpt.Pelt(model="l2") gives the same breakpoints, ~500x slower on 1,000 windows)
    algo = rpt.KernelCPD(kernel="linear", min_size=min_size).fit(x.reshape(-1, 1))
    return [int(b) for b in algo.predict(pen=pen) if b < n]


def _log(values: np.ndarray) -> np.ndarray:
    return np.log(values) if np.all(values > 0) else values


def _max_gain(x: np.ndarray, min_size: int) -> np.ndarray:
    """Per row of ``x``: the largest drop of the l2 cost from splitting it in two (min_size each side)."""
    n = x.shape[-1]
    taus = np.arange(min_size, n - min_size + 1)
    csum = np.cumsum(x, axis=-1)
    total = csum[..., -1:]
    left = csum[..., taus - 1] / taus
    right = (total - csum[..., taus - 1]) / (n - taus)
    gain = taus * (n - taus) / n * (left - right) ** 2
    return np.asarray(gain.max(axis=-1))


def _split(x: np.ndarray, min_size: int) -> int:
    """The best single split of ``x`` (index of the first point after it), by ruptures."""
    import ruptures as rpt

    bkps = rpt.Binseg(model="l2", min_size=min_size, jump=1).fit(x.reshape(-1, 1)).predict(n_bkps=1)
    return int(bkps[0])


def _p_value(x: np.ndarray, min_size: int, permutations: int, rng: np.random.Generator) -> float:
    """Share of permuted copies of ``x`` that split at least as well as ``x`` (add-one estimate)."""
    observed = float(_max_gain(x, min_size))
    perms = rng.permuted(np.broadcast_to(x, (permutations, x.size)), axis=1)
    extreme = int(np.sum(_max_gain(perms, min_size) >= observed * (1 - 1e-12)))
    return (extreme + 1) / (permutations + 1)


def tested_change_points(values: Sequence[float] | np.ndarray, *, alpha: float = DEFAULT_ALPHA,
                  min_size: int = DEFAULT_MIN_SIZE, permutations: int = DEFAULT_PERMUTATIONS,
                  seed: int = 0) -> list[tuple[int, float]]:
    """``(index, p_value)`` of each change, in order: the index of the first point after it."""
    x = _log(np.asarray(values, dtype=np.float64))
    if x.size < 2 * min_size or not np.all(np.isfinite(x)):
        return []
    rng = np.random.default_rng(seed)
    found: list[tuple[int, float]] = []
    pending = [(0, x.size)]
    while pending:
        start, stop = pending.pop()
        seg = x[start:stop]
        if seg.size < 2 * min_size or np.ptp(seg) == 0:
            continue
        p = _p_value(seg, min_size, permutations, rng)
        if p >= alpha:
            continue
        cut = start + _split(seg, min_size)
        found.append((cut, p))
        pending += [(start, cut), (cut, stop)]
    return sorted(found)
