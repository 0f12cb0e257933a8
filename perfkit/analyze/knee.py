"""The knee of a throughput-latency curve, by Kneedle; and the knee metric's name.

Method: Kneedle (V. Satopää, J. Albrecht, D. Irwin, B. Raghavan, "Finding a
'Kneedle' in a Haystack: Detecting Knee Points in System Behavior", ICDCS
Workshops 2011), as implemented by the ``kneed`` package, on a *convex,
increasing* curve: x is the achieved throughput of each sweep step, y a latency
percentile (:func:`parse_metric`). Both are scaled to [0, 1]; the knee is the
local maximum of the difference curve (how far the curve lies below the chord
from its first to its last point) that the curve later falls below
``max - S * mean(spacing of x)`` from; ``S`` (sensitivity, default 1) is the
paper's: larger S wants a sharper knee. No point qualifies on a curve without a
bend (a straight line): then there is no knee.

Past saturation a server's throughput stops growing (or falls) while latency
explodes, so achieved throughput is not monotone over a sweep; Kneedle needs an
ordered x, so each step's x is the best throughput reached up to it (steps in
the order of their intended rate). The knee is always one of the measured steps.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: ``--knee-metric`` quantities: name -> metric of perfkit.store.runs.LATENCY_COLUMNS, each the summary's
#: field of that name (README, "What each LLM metric means"). TTFT is counted from the intended send
#: (what a user waits), like the summary's ``ttft_intended_ms``; TPOT excludes the first token.
KNEE_QUANTITIES = {"latency": "latency_ms", "service": "service_ms", "ttft": "ttft_intended_ms",
                   "tpot": "tpot_ms", "tpot_incl_ttft": "tpot_incl_ttft_ms", "itl_max": "itl_ms_max",
                   "itl_request_mean": "itl_request_mean_ms"}
#: Percentile suffixes: ``p50`` ... ``p999`` (99.9th).
KNEE_PERCENTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p999": 0.999}
DEFAULT_KNEE_METRIC = "latency_p99"
DEFAULT_SENSITIVITY = 1.0


@dataclass(frozen=True)
class KneeMetric:
    """A latency percentile named like ``latency_p99``: the requests column and the quantile."""

    name: str
    column: str
    q: float


def parse_metric(name: str) -> KneeMetric:
    """``ttft_p99`` -> (``ttft_intended_ms``, 0.99); a ValueError naming the choices otherwise."""
    quantity, _, pct = name.strip().rpartition("_")
    if quantity not in KNEE_QUANTITIES or pct not in KNEE_PERCENTILES:
        raise ValueError(f"unknown knee metric {name!r}: QUANTITY_PCT with QUANTITY one of "
                         f"{', '.join(KNEE_QUANTITIES)} and PCT one of {', '.join(KNEE_PERCENTILES)} "
                         f"(e.g. {DEFAULT_KNEE_METRIC})")
    return KneeMetric(name.strip(), KNEE_QUANTITIES[quantity], KNEE_PERCENTILES[pct])


def kneedle(throughput: Sequence[float | None], latency: Sequence[float | None],
            sensitivity: float = DEFAULT_SENSITIVITY) -> int | None:
    """Index of the knee among the points (given in sweep order), or None (see the module doc).

    Points with a missing or non-finite value are left out; fewer than three
    usable points, a flat x, a latency no higher at the last step than at the first, or a "knee"
    at the last step (no steeper stretch seen after it) mean no knee.
    """
    from kneed import KneeLocator

    x = np.asarray([np.nan if v is None else v for v in throughput], dtype=float)
    y = np.asarray([np.nan if v is None else v for v in latency], dtype=float)
    keep = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    if len(keep) < 3:
        return None
    xs = np.maximum.accumulate(x[keep])
    ys = y[keep]
    if np.ptp(xs) <= 0 or ys[-1] <= ys[0]:   # latency that did not grow over the sweep has no knee
        return None
    with warnings.catch_warnings():  # kneed warns when it finds no knee: None says so
        warnings.simplefilter("ignore")
        found = KneeLocator(xs, ys, S=sensitivity, curve="convex", direction="increasing").knee
    if found is None:
        return None
    at = int(np.flatnonzero(xs == found)[0])
    return None if at == len(xs) - 1 else int(keep[at])   # a knee needs a steeper stretch after it
