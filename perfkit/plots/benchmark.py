"""Figures of one benchmark run (notebook 01): latency over time, percentile spectrum, throughput, schedule lag,
token lengths.

Each function takes a run's small frames (:class:`perfkit.report.benchmark.RunData`:
times in seconds from the run's t0, samples bounded) and returns a matplotlib
``Figure``; the frames were read and aggregated in SQL beforehand, so nothing
here reads the store or computes a statistic. Every figure states
the number of requests behind it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from perfkit.plots import style

if TYPE_CHECKING:
    import pandas as pd

    from perfkit.report.benchmark import RunData

#: Below this many requests the dots are bigger and darker (there are few to see).
FEW_POINTS = 1000


def _figure(height: float, rows: int = 1, width: float = 10.0) -> tuple[Figure, list[Axes]]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, 1, figsize=(width, height), sharex=rows > 1, squeeze=False,
                             layout="constrained")
    return fig, list(axes[:, 0])


def _dots(n: int, alpha_many: float) -> tuple[float, float]:
    """Marker size and opacity of a scatter of ``n`` points."""
    few = n < FEW_POINTS
    return (14.0, 0.7) if few else (4.0, alpha_many)


def _shade_phases(ax: Axes, data: RunData, label: bool = True) -> None:
    """Grey the warm-up and cool-down spans: their requests are drawn, but no statistic counts them."""
    for span in data.phases:
        ax.axvspan(span.start_s, span.end_s, color=style.MUTED, alpha=0.15, linewidth=0,
                   label=f"{span.name} {span.end_s - span.start_s:g} s (n={span.n:,}), excluded from statistics"
                   if label else None)


def _measured(data: RunData) -> str:
    """`` measured`` after a count when warm-up or cool-down requests are drawn but not counted."""
    return " measured" if data.phases else ""


def latency_over_time(data: RunData) -> Figure:
    """Every request's latency against its intended send time, with rolling P50/P99 per window.

    Long runs draw a bounded sample (every request above P99 plus a sample of
    the rest); the rolling percentiles always cover every request.
    """
    fig, (ax,) = _figure(4.2)
    drawn, err = data.latency_sample, data.error_sample
    shown = f", {len(drawn):,} drawn: all above P99 + a sample" if len(drawn) < data.n_ok else ""
    size, alpha = _dots(data.n_requests, 0.35)
    ax.scatter(drawn["t_s"], drawn["latency_ms"], s=size, alpha=alpha, color=style.OK, linewidths=0,
               label=f"ok request (n={data.n_ok:,}{_measured(data)}{shown})", rasterized=True)
    if len(err):
        ax.scatter(err["t_s"], err["latency_ms"], s=10, marker="x", color=style.ERROR,
                   label=f"error (n={data.n_errors:,})")
    roll, w = data.rolling, data.window_s
    if len(roll):
        ax.plot(roll["t_s"], roll["p50"], color=style.P50, lw=2, label=f"P50 per {w:g} s")
        ax.plot(roll["t_s"], roll["p99"], color=style.P99, lw=2, label=f"P99 per {w:g} s")
    _shade_phases(ax, data)
    ax.set_yscale("log")
    ax.set_xlabel("intended send time since start (s)")
    ax.set_ylabel("latency from intended send (ms, log)")
    ax.set_title(f"Latency over time — run {data.run_id}")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper right", fontsize=8, markerscale=2)
    return fig


def percentile_spectrum(data: RunData) -> Figure:
    """Latency by percentile on a 1/(1-q) log axis (the HdrHistogram view of the tail)."""
    fig, (ax,) = _figure(4.0)
    spec = data.spectrum
    ax.plot(spec["inv_tail"], spec["latency_ms"], color=style.OK, lw=2, label=f"latency (n={data.n_ok:,})")
    ticks = [(1, "P0"), (2, "P50"), (10, "P90"), (100, "P99"), (1000, "P99.9"), (10000, "P99.99")]
    top = float(spec["inv_tail"].max()) if len(spec) else 1.0
    shown = [(x, lab) for x, lab in ticks if x <= max(top, 1.0) * 1.0001]
    ax.set_xscale("log")
    ax.set_xticks([x for x, _ in shown], [lab for _, lab in shown])
    ax.minorticks_off()
    ax.set_xlabel("percentile (axis: 1/(1-q), log)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Percentile spectrum")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def throughput_errors(data: RunData) -> Figure:
    """Intended vs achieved request rate, and errors, per time bin."""
    fig, (ax, ax_err) = _figure(5.0, rows=2)
    tp, w = data.throughput, data.window_s
    ax.step(tp["t_s"], tp["achieved_rps"], where="mid", color=style.OK, lw=2.5, label="achieved (ok responses)")
    ax.step(tp["t_s"], tp["intended_rps"], where="mid", color=style.REFERENCE, lw=1.2, ls="--",
            label="intended (sends scheduled)")
    _shade_phases(ax, data)
    _shade_phases(ax_err, data, label=False)
    ax.set_ylabel("req/s")
    ax.set_title(f"Throughput per {w:g} s (n={data.n_requests:,} requests{_measured(data)})")
    ax.grid(True, alpha=0.25)
    ax.legend(loc="lower right", fontsize=8)
    ax_err.bar(tp["t_s"], tp["errors_rps"], width=w * 0.9, color=style.ERROR, label=f"errors (n={data.n_errors:,})")
    ax_err.set_ylim(0, max(1.0, float(tp["errors_rps"].max() if len(tp) else 0.0) * 1.1))
    ax_err.set_ylabel("errors/s")
    ax_err.set_xlabel("time since start (s)")
    ax_err.grid(True, alpha=0.25)
    ax_err.legend(loc="upper right", fontsize=8)
    return fig


def schedule_lag(data: RunData) -> Figure:
    """Schedule lag per request over time: above a few ms the load generator, not the server, was slow."""
    fig, (ax,) = _figure(3.2)
    drawn = data.lag_sample
    size, alpha = _dots(data.n_lag, 0.4)
    ax.scatter(drawn["t_s"], drawn["schedule_lag_ms"], s=size, alpha=alpha,
               color=style.PURPLE, linewidths=0, rasterized=True, label=f"lag (n={data.n_lag:,})")
    _shade_phases(ax, data)
    ax.set_xlabel("intended send time since start (s)")
    ax.set_ylabel("actual − intended send (ms)")
    ax.set_title("Schedule lag of the load generator")
    ax.grid(True, alpha=0.25)
    ax.legend(loc="upper right", fontsize=8)
    return fig


def token_lengths(lengths: pd.DataFrame) -> Figure:
    """Prompt and output tokens per request, asked for (intended) against what the server's
    usage reported (realized): the workload's length distribution as it reached the model.
    ``lengths``: :func:`perfkit.store.runs.token_lengths`."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(10.0, 3.6), layout="constrained")
    for ax, what in zip(axes, ("prompt", "output")):
        intended = lengths[f"{what}_tokens_intended"].dropna()
        realized = lengths[f"{what}_tokens"].dropna()
        both = np.concatenate([intended.to_numpy(float), realized.to_numpy(float)])
        lo, hi = (float(both.min()), float(both.max())) if len(both) else (0.0, 1.0)
        bins = np.arange(np.floor(lo), np.ceil(hi) + 2) if hi - lo < 60 else np.linspace(lo, hi + 1, 61)
        ax.hist(intended, bins=bins, histtype="stepfilled", alpha=0.35, color=style.BLUE,
                label=style.with_n("intended", len(intended)))
        ax.hist(realized, bins=bins, histtype="step", linewidth=1.6, color=style.ORANGE,
                label=style.with_n("realized (server usage)", len(realized)))
        style.title(ax, f"{what.capitalize()} tokens per request", len(lengths), "tokens", fontsize=10)
        ax.set_xlabel(f"{what} tokens")
        ax.set_ylabel("requests")
        ax.grid(True, alpha=0.25)
        ax.legend(loc="upper right", fontsize=8)
    fig.suptitle("Token lengths: intended (asked for) vs realized (server usage)")
    return fig
