"""Over-saturation: the arrival rate exceeds the completion rate for a sustained window.

The test, over per-bin counts of a run (``a_i`` requests whose intended send
falls in bin ``i``, ``c_i`` requests done in it, successes and errors alike; bins
of ``bin_s`` from the first intended send, covering the schedule only) and,
optionally, ``m_i`` the median latency of the requests sent in bin ``i``:

* the number in flight at the end of bin ``i`` is ``q_i = sum(a_0..a_i) - sum(c_0..c_i)``;
* a *window* is ``window_s`` consecutive seconds (whole bins) from ``skip_s`` on;
  when the run has fewer bins left, the window is all of them, and below 2 bins
  the run cannot be tested (``oversaturated`` is None);
* a window is over-saturated when (1) its completions fall short of its
  arrivals by more than ``epsilon``: ``C < (1 - epsilon) * A``; (2) the backlog
  grew by at least ``min_growth`` requests over it: ``A - C >= min_growth``
  (a handful of requests at a low rate is noise, not a queue); (3) the growth was
  sustained: at the end of every bin of the window more requests were in flight
  than when it opened; and (4), given latencies, the requests waited longer the
  later they came: ``m`` in the window's last bin exceeds ``(1 + epsilon)`` times
  ``m`` in its first (a bin whose requests never completed counts as unbounded).

Condition (4) tells a queue from a start-up: at the start the number in flight
rises from 0 to its steady level (arrival rate x latency, Little's law) over
about one latency, which (1)-(3) alone would take for a backlog when the latency
is longer than the window; but a start-up's latency does not grow with the send
time, a queue's does. A run is over-saturated when any window is; the result
names the first one. A steady load the server keeps up with, however high,
passes: its completions match its arrivals, its latency stays level.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

WINDOW_S = 3.0
EPSILON = 0.1
MIN_GROWTH = 5


@dataclass(frozen=True)
class Saturation:
    """The verdict over one run: whether, where, and the rates over the first over-saturated window."""

    oversaturated: bool | None     # None: too short to test
    window_s: float                # the window tested (shorter than asked for short runs)
    start_s: float | None = None   # offset of the first over-saturated window from the first send
    arrival_rps: float | None = None
    completion_rps: float | None = None
    in_flight: int | None = None   # requests in flight at that window's end
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def oversaturation(arrivals: Sequence[int], completions: Sequence[int],
                   median_latency_ms: Sequence[float] | None = None, bin_s: float = 1.0,
                   window_s: float = WINDOW_S, epsilon: float = EPSILON, min_growth: int = MIN_GROWTH,
                   skip_s: float = 0.0) -> Saturation:
    """Test per-bin arrival and completion counts (and median latencies by send time, NaN where none
    completed) for over-saturation (see the module doc)."""
    if not (0 < epsilon < 1 and window_s > 0 and bin_s > 0):
        raise ValueError("need 0 < epsilon < 1, window_s > 0 and bin_s > 0")
    a = np.asarray(arrivals, dtype=np.int64)
    c = np.asarray(completions, dtype=np.int64)
    m = None if median_latency_ms is None else np.nan_to_num(np.asarray(median_latency_ms, dtype=float),
                                                             nan=np.inf)
    if a.shape != c.shape or (m is not None and m.shape != a.shape):
        raise ValueError("arrivals, completions (and latencies) must have one value per bin each")
    q = np.concatenate([[0], np.cumsum(a - c)])   # q[i + 1]: in flight at the end of bin i
    first = min(len(a), math.ceil(skip_s / bin_s - 1e-9))
    k = min(max(1, round(window_s / bin_s)), len(a) - first)
    if k < 2:
        return Saturation(None, max(k, 0) * bin_s, reason=f"{len(a) * bin_s:g} s of schedule: too short to test")
    for j in range(first, len(a) - k + 1):
        arrived, done = int(a[j:j + k].sum()), int(c[j:j + k].sum())
        sustained = bool((q[j + 1:j + k + 1] > q[j]).all())
        waits_grow = m is None or bool(m[j + k - 1] > (1 + epsilon) * m[j])
        if done < (1 - epsilon) * arrived and arrived - done >= min_growth and sustained and waits_grow:
            return Saturation(True, k * bin_s, j * bin_s, arrived / (k * bin_s), done / (k * bin_s),
                              int(q[j + k]), reason=f"{done} completions < {arrived} arrivals in "
                              f"{j * bin_s:g}..{(j + k) * bin_s:g} s; {int(q[j + k])} in flight")
    return Saturation(False, k * bin_s, reason=f"completions kept up with arrivals in every {k * bin_s:g} s window")
