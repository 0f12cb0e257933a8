"""Figures of the trends report (notebook 07): a case's metrics over its runs, change points marked.

Takes the history frames of :mod:`perfkit.analyze.trend_store` (one row per run,
oldest first, with its interval) and the change points of
:mod:`perfkit.analyze.history`; draws, computes nothing.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from perfkit.analyze.history import REGRESSION, ChangePoint
from perfkit.plots import style

_KIND_COLOUR = {REGRESSION: style.FAIL, "improvement": style.PASS, "within margin": style.MUTED}


def case_history(case: str, histories: Mapping[str, pd.DataFrame], changes: Sequence[ChangePoint]) -> Figure:
    """One panel per metric: each run's value with its interval, segment levels, change points annotated
    with the version after them (red: regression, green: improvement, grey: within the margin)."""
    metrics = list(histories)
    # not through pyplot: a notebook loop displays each figure once, and none is left open
    fig = Figure(figsize=(10, 2.8 * len(metrics)), layout="constrained")
    axes = fig.subplots(len(metrics), 1, sharex=True, squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics):
        frame = histories[metric].reset_index(drop=True)
        x = np.arange(len(frame))
        value = frame["value"].to_numpy(dtype=float)
        lo, hi = frame["lo"].to_numpy(dtype=float), frame["hi"].to_numpy(dtype=float)
        has = np.isfinite(lo) & np.isfinite(hi)
        ax.errorbar(x[has], value[has], yerr=[value[has] - lo[has], hi[has] - value[has]], fmt="o",
                    ms=4, color=style.BLUE, ecolor=style.LIGHT, capsize=2, label="run (95% interval)")
        ax.plot(x[~has], value[~has], "o", ms=4, color=style.BLUE)
        mine = sorted((c for c in changes if c.metric == metric), key=lambda c: c.index)
        cuts = [0, *[c.index for c in mine], len(frame)]
        for a, b in zip(cuts[:-1], cuts[1:]):
            if b > a:
                ax.hlines(float(np.exp(np.log(value[a:b]).mean())), a - 0.4, b - 0.6, color=style.REFERENCE, lw=1.2)
        for c in mine:
            colour = _KIND_COLOUR.get(c.kind, style.MUTED)
            ax.axvline(c.index - 0.5, color=colour, ls="--", lw=1.2)
            ax.annotate(f"{c.change.value:+.1%}" + (f" at {c.version_after}" if c.version_after else ""),
                        (c.index - 0.5, 1.0), xycoords=("data", "axes fraction"), ha="left", va="top",
                        fontsize=8, color=colour, xytext=(3, -2), textcoords="offset points")
        ax.set_ylabel(style.axis_label(metric))
        style.title(ax, f"case {case}: {style.axis_label(metric)} per run", n=len(frame), fontsize=10, loc="left")
    axes[-1, 0].set_xlabel("run (oldest first)")
    return fig
