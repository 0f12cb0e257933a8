"""Figures of the sweep report (notebook 09): the latency-throughput curve, its knee and where it over-saturated.

Takes the steps table of :meth:`perfkit.analyze.sweep_report.SweepReport.table`
(one row per step, by intended rate); draws, computes nothing.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from perfkit.plots import style

_POINT, _KNEE, _OVER = style.BLUE, style.PASS, style.FAIL


def latency_throughput(steps: pd.DataFrame, metric: str) -> Figure:
    """Achieved throughput (x) against the ``metric`` percentile with its interval (y), n beside each
    point, the steps joined in the order of their intended rate; the knee ringed, over-saturated steps
    drawn as red crosses. The latency axis is logarithmic when it spans more than 20x."""
    fig = Figure(figsize=(9, 5), layout="constrained")
    ax = fig.subplots()
    x = steps["achieved_rps"].to_numpy(dtype=float)
    y = steps[f"{metric}_ms"].to_numpy(dtype=float)
    lo, hi = steps["lo_ms"].to_numpy(dtype=float), steps["hi_ms"].to_numpy(dtype=float)
    over = steps["oversaturated"].eq(True).to_numpy()
    ax.plot(x, y, "-", color=style.LIGHT, lw=1, zorder=1)
    # an interval bound outside the sample (too few requests) is drawn to the point only
    err = [np.where(np.isfinite(lo), y - lo, 0), np.where(np.isfinite(hi), hi - y, 0)]
    ax.errorbar(x[~over], y[~over], yerr=[e[~over] for e in err], fmt="o", ms=5, color=_POINT, ecolor=style.LIGHT,
                capsize=3, label=f"step: {metric} (95% interval)")
    if over.any():
        ax.errorbar(x[over], y[over], yerr=[e[over] for e in err], fmt="X", ms=9, color=_OVER, ecolor=style.LIGHT,
                    capsize=3, label="over-saturated: arrivals outran completions")
    for xi, yi, n, rate in zip(x, y, steps["n"], steps["intended_rps"]):
        if np.isfinite(xi) and np.isfinite(yi):
            ax.annotate(f"{rate:,.3g}/s, n={int(n):,}", (xi, yi), textcoords="offset points", xytext=(6, -12),
                        fontsize=8, color=style.MUTED)
    knee = steps.index[steps["knee"].eq(True)]
    if len(knee):
        k = knee[0]
        ax.plot([x[k]], [y[k]], "o", ms=16, mfc="none", mec=_KNEE, mew=2,
                label=f"knee (Kneedle): {x[k]:,.3g} req/s, {y[k]:,.3g} ms")
    finite = y[np.isfinite(y) & (y > 0)]
    if len(finite) and finite.max() / finite.min() > 20:
        ax.set_yscale("log")
    ax.margins(x=0.1)
    ax.set_xlabel("achieved throughput (req/s)")
    ax.set_ylabel(f"{metric} (ms)")
    ax.set_title("Latency against throughput, one point per sweep step")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    return fig
