"""How the trend detector behaves on synthetic histories: false positives, detection rate and delay (pure).

Each synthetic run's metric is ``level * lognormal(0, noise)`` (run-to-run noise of a
few percent, as nightly P99s of one case on one machine show). Measured the way a
nightly pipeline meets it: after each new run the whole history is searched again.

* False positive: a flat history of ``n_runs`` runs in which a regression or an
  improvement (against the margin) is reported at all.
* Detection: ``before`` flat runs, then a step up by ``step``; after each of up to
  ``after`` further runs, is a regression found within ``tolerance`` runs of the step?
  The delay is the number of runs since the step (the first run after it counts 1)
  when it is first found.

``benchmarks/trend_calibration.py`` runs this at scale and prints the rates with
their binomial intervals; the tests run a small, seeded version.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from perfkit.analyze.history import DEFAULT_MARGIN, IMPROVEMENT, REGRESSION, find_changes
from perfkit.quantiles import Estimate, proportion_ci


@dataclass(frozen=True)
class Calibration:
    """Counts of one experiment and the rates with their Clopper-Pearson intervals."""

    label: str
    trials: int
    hits: int
    rate: Estimate
    delays: tuple[int, ...] = ()

    def line(self) -> str:
        r = self.rate
        text = (f"{self.label}: {self.hits}/{self.trials} = {r.value:.1%} "
                f"[{r.lo:.1%}, {r.hi:.1%}] (95% Clopper-Pearson)")
        if self.delays:
            d = np.asarray(self.delays)
            text += (f"; delay (runs since the step until flagged) median {np.median(d):.0f}, "
                     f"90th percentile {np.percentile(d, 90, method='inverted_cdf'):.0f}")
        return text


def _frame(values: np.ndarray) -> pd.DataFrame:
    n = values.size
    return pd.DataFrame({"run_id": [f"r{i:04d}" for i in range(n)], "started_at": "", "case": "synthetic",
                         "version": "", "tool_version": "", "machine": "", "value": values,
                         "lo": np.nan, "hi": np.nan, "n": 0})


def _kinds(values: np.ndarray, margin: float) -> list[tuple[int, str]]:
    return [(c.index, c.kind) for c in find_changes(_frame(values), "synthetic", "p99_ms", margin=margin)]


def false_positives(trials: int, n_runs: int = 30, noise: float = 0.03, margin: float = DEFAULT_MARGIN,
                    seed: int = 1) -> Calibration:
    """Share of flat histories in which a regression or improvement is reported."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(trials):
        values = 100.0 * rng.lognormal(0.0, noise, n_runs)
        hits += any(kind in (REGRESSION, IMPROVEMENT) for _, kind in _kinds(values, margin))
    return Calibration(f"false positives, flat {n_runs} runs, noise {noise:.0%}", trials, hits,
                       proportion_ci(hits, trials))


def detection(trials: int, step: float, before: int = 20, after: int = 10, noise: float = 0.03,
              margin: float = DEFAULT_MARGIN, tolerance: int = 1, seed: int = 2) -> Calibration:
    """Share of step histories whose regression is found within ``after`` runs, and the delays."""
    rng = np.random.default_rng(seed)
    hits, delays = 0, []
    for _ in range(trials):
        values = 100.0 * rng.lognormal(0.0, noise, before + after)
        values[before:] *= 1.0 + step
        for seen in range(1, after + 1):
            found = _kinds(values[:before + seen], margin)
            if any(kind == REGRESSION and abs(i - before) <= tolerance for i, kind in found):
                hits += 1
                delays.append(seen)
                break
    return Calibration(f"detection of a {step:.0%} step within {after} runs, noise {noise:.0%}", trials, hits,
                       proportion_ci(hits, trials), tuple(delays))
