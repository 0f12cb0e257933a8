"""Synthetic runs for the A/B judge: AR(1) latency series with a run-level random effect."""
from __future__ import annotations

import math

import numpy as np
from scipy.signal import lfilter

from perfkit.analyze.bootstrap import RunSeries


def ar1(n: int, phi: float, rng: np.random.Generator) -> np.ndarray:
    """A stationary AR(1) series with unit variance."""
    e = rng.normal(size=n) * math.sqrt(1 - phi ** 2)
    e[0] = rng.normal()
    return lfilter([1.0], [1.0, -phi], e)


def runs(rng: np.random.Generator, k: int, scale: float = 1.0, n: int = 2000, phi: float = 0.5,
         run_sd: float = 0.02, tag: str = "r", errors: float = 0.0) -> list[RunSeries]:
    """``k`` runs of ``n`` requests: latency ``10 ms x scale x exp(u + 0.3 x_t)``, ``u ~ N(0, run_sd)``
    per run (run-to-run variation), ``x_t`` AR(1) with coefficient ``phi`` (autocorrelation)."""
    out = []
    for i in range(k):
        lat = 10.0 * scale * np.exp(rng.normal(0, run_sd) + 0.3 * ar1(n, phi, rng))
        failed = rng.random(n) < errors
        out.append(RunSeries(f"{tag}{i}", np.where(failed, np.nan, lat), failed))
    return out
