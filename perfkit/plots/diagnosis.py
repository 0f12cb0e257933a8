"""Figures of the diagnosis notebooks: telemetry timelines, root-cause findings, A/B verdicts.

Each function takes small frames or the numbers a finding already holds and
returns a :class:`matplotlib.figure.Figure` (no pyplot state); nothing here reads
the store or computes a statistic. :func:`finding_figure` draws a finding's
:class:`~perfkit.analyze.rootcause.finding.Chart`; :func:`show_findings`
displays them in a notebook.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from perfkit import names
from perfkit.plots import style

if TYPE_CHECKING:
    from perfkit.analyze.rootcause.finding import Finding


def _fig(w: float = 7.0, h: float = 3.6) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(w, h), layout="constrained")
    return fig, fig.add_subplot(1, 1, 1)


def time_breakdown(parts_ms: Mapping[str, float], title: str) -> Figure:
    """One horizontal stacked bar: where a request's mean time goes."""
    fig, ax = _fig(7, 2.4)
    left = 0.0
    for name, v in parts_ms.items():
        if v is None or not math.isfinite(v) or v <= 0:
            continue
        ax.barh([0], [v], left=left, label=f"{name} {v:.1f} ms")
        left += v
    ax.set_yticks([])
    ax.set_xlabel("mean time per request (ms)")
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=4, fontsize=8, frameon=False)
    return fig


def scatter_xy(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, xlabel: str, ylabel: str,
               title: str, y2: Sequence[float] | np.ndarray | None = None, y2label: str | None = None) -> Figure:
    """Scatter of y against x (e.g. P99 or batch size against arrival rate), optional 2nd axis."""
    fig, ax = _fig()
    ax.scatter(x, y, s=14, label=ylabel)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if y2 is not None:
        ax2 = ax.twinx()
        ax2.scatter(x, y2, s=14, color=style.RED, marker="x", label=y2label)
        ax2.set_ylabel(y2label or "", color=style.RED)
    ax.set_title(title)
    return fig


def bars(values: Mapping[str, float], ylabel: str, title: str) -> Figure:
    """One bar per named value, each annotated with its number."""
    fig, ax = _fig(5.5, 3.2)
    names = list(values)
    ax.bar(names, [values[n] for n in names], color=[style.color(k) for k in range(len(names))])
    for i, n in enumerate(names):
        ax.annotate(f"{values[n]:.2f}", (i, values[n]), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return fig


def percentile_spectrum(curves: Mapping[str, pd.DataFrame], title: str) -> Figure:
    """Latency by percentile with interval bands; each frame has quantile, value, lo, hi."""
    fig, ax = _fig()
    for name, frame in curves.items():
        q = frame["quantile"].to_numpy(float)
        x = -np.log10(1 - q)
        ax.plot(x, frame["value"], marker="o", label=name)
        lo = frame["lo"].astype(float).to_numpy()
        hi = frame["hi"].astype(float).to_numpy()
        ok = np.isfinite(lo) & np.isfinite(hi)
        ax.fill_between(x[ok], lo[ok], hi[ok], alpha=0.2)
    ticks = sorted(set(float(v) for f in curves.values() for v in f["quantile"]))
    ax.set_xticks([-math.log10(1 - t) for t in ticks], [f"p{t * 100:g}" for t in ticks])
    ax.set_ylabel("latency (ms)")
    ax.set_title(title)
    ax.legend()
    return fig


def cdf_overlay(samples: Mapping[str, np.ndarray], title: str, xlabel: str = "latency (ms)") -> Figure:
    """Empirical CDFs on a log x axis, tail emphasised by a second panel of 1 - F."""
    fig = Figure(figsize=(8, 3.4), layout="constrained")
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for name, x in samples.items():
        x = np.sort(np.asarray(x, float))
        if x.size == 0:
            continue
        f = np.arange(1, x.size + 1) / x.size
        ax1.plot(x, f, label=f"{name} (n={x.size:,})")
        ax2.plot(x, 1 - f + 1.0 / x.size, label=name)
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
    ax1.set_ylabel("F(x)")
    ax2.set_yscale("log")
    ax2.set_ylabel("1 - F(x)  (tail)")
    ax1.legend(fontsize=8)
    fig.suptitle(title)
    return fig


def timeline(t: Sequence[float] | np.ndarray, series: Mapping[str, Sequence[float] | np.ndarray], title: str,
             marks: Sequence[float] = (), ylabel: str = "", secondary: Mapping[str, Sequence[float] | np.ndarray] | None = None,
             shade: Sequence[tuple[float, float]] = ()) -> Figure:
    """Values over the run's time (s), optional vertical marks (change points) and shaded spans."""
    fig, ax = _fig(8, 3.4)
    for name, y in series.items():
        ax.plot(t, y, label=name)
    for m in marks:
        ax.axvline(m, color="k", linestyle="--", linewidth=1)
    for a, b in shade:
        ax.axvspan(a, b, color=style.RED, alpha=0.15)
    ax.set_xlabel("time since the run's first request (s)")
    ax.set_ylabel(ylabel)
    if secondary:
        ax2 = ax.twinx()
        for name, y in secondary.items():
            ax2.plot(t, y, color=style.RED, alpha=0.7, label=name)
        ax2.set_ylabel(", ".join(secondary), color=style.RED)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title)
    return fig


# --------------------------------------------------------------------------- root-cause findings

_CHARTS: dict[str, Callable[..., Figure]] = {
    "breakdown": time_breakdown, "scatter": scatter_xy, "bars": bars,
    "spectrum": percentile_spectrum, "timeline": timeline,
}


def finding_figure(finding: Finding) -> Figure | None:
    """The figure that shows a finding (None when it has no chart)."""
    if finding.chart is None:
        return None
    return _CHARTS[finding.chart.kind](**finding.chart.data)


def show_findings(findings: Sequence[Finding], limit: int = 8) -> int:
    """Display the figures of the first ``limit`` findings in a notebook; returns how many.

    :func:`perfkit.analyze.rootcause.diagnose` returns findings ranked, most severe first.
    """
    from IPython.display import display

    shown = 0
    for f in findings[:limit]:
        fig = finding_figure(f)
        if fig is not None:
            display(fig)
            shown += 1
    return shown


# --------------------------------------------------------------------------- telemetry timeline

#: Panels of the telemetry timeline: title, unit, [(column, legend)] (columns of
#: :func:`perfkit.analyze.telemetry.timeline`).
PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("Latency", "ms", [("latency_p50_ms", "p50"), ("latency_p99_ms", "p99")]),
    ("GPU utilization", "%", [(names.GPU_UTILIZATION, "GPU")]),
    ("CPU utilization", "%", [(names.HOST_CPU_UTILIZATION, "machine"),
                              (names.PROCESS_CPU_UTILIZATION, "target process")]),
    ("Memory", "GiB", [("gpu_memory_used_gib", "GPU used"), ("host_memory_used_gib", "machine used"),
                       ("process_memory_rss_gib", "target RSS")]),
    ("GPU power", "W", [(names.GPU_POWER, "power")]),
    ("Queue depth", "requests", [("queue_depth", "queue")]),
    ("Batch size", "requests/batch", [("batch_size_mean", "mean batch")]),
]


def timeline_figure(frame: pd.DataFrame, title: str = "",
                    panels: Sequence[tuple[str, str, list[tuple[str, str]]]] = PANELS) -> Figure:
    """Stacked panels sharing the time axis; a panel without data says so instead of vanishing."""
    fig = Figure(figsize=(11, 2.0 * len(panels)), layout="constrained")
    axes: Any = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    x = frame["t_s"] if "t_s" in frame else frame.index
    for ax, (name, unit, series) in zip(axes, panels):
        drawn = False
        for col, legend in series:
            if col in frame and frame[col].notna().any():
                ax.plot(x, frame[col], label=legend, marker=".", markersize=3, linewidth=1)
                drawn = True
        ax.set_ylabel(f"{name}\n({unit})", fontsize=8)
        if drawn:
            ax.legend(loc="upper right", fontsize=7)
        else:
            ax.text(0.5, 0.5, "no data (no GPU / not collected)", ha="center", va="center",
                    transform=ax.transAxes, color="grey")
            ax.set_yticks([])
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("seconds since start")
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- A/B verdicts (notebook 04)

_DECISION_COLORS = {"pass": style.PASS, "fail": style.FAIL, "inconclusive": style.INCONCLUSIVE}


def ab_run_points(runs: pd.DataFrame, title: str = "") -> Figure:
    """Each run's P50 and P99 as a point per arm, the arm's mean as a bar: the run-to-run spread.

    ``runs`` has one row per run with ``arm``, ``p50_ms`` and ``p99_ms``
    (:meth:`perfkit.analyze.abtest.Verdict.runs`).
    """
    fig = Figure(figsize=(8, 3.4), layout="constrained")
    arms = list(dict.fromkeys(runs["arm"]))
    for i, (col, name) in enumerate((("p50_ms", "P50"), ("p99_ms", "P99"))):
        ax = fig.add_subplot(1, 2, i + 1)
        for j, arm in enumerate(arms):
            y = runs.loc[runs["arm"] == arm, col].to_numpy(float)
            x = j + (np.linspace(-0.15, 0.15, y.size) if y.size > 1 else np.zeros(y.size))
            ax.scatter(x, y, s=36, zorder=3, color=style.color(j))
            if np.isfinite(y).any():
                ax.hlines(np.nanmean(y), j - 0.3, j + 0.3, colors="k", linewidth=1.5, zorder=2)
        ax.set_xticks(range(len(arms)), [f"{a}\n({(runs['arm'] == a).sum()} runs)" for a in arms])
        ax.set_xlim(-0.6, len(arms) - 0.4)
        ax.set_ylabel(f"{name} latency (ms)")
        ax.set_title(f"{name} of each run (bar: arm mean)", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def ab_intervals(table: pd.DataFrame, title: str = "") -> Figure:
    """Each metric's difference (candidate - baseline) with its interval against the ±margin band.

    ``table`` has one row per metric with ``metric``, ``unit`` (ms or share),
    ``difference``, ``lo``, ``hi``, ``margin`` and ``decision``
    (:meth:`perfkit.analyze.abtest.Verdict.table`). Shares are drawn in
    percentage points.
    """
    fig = Figure(figsize=(8, 0.8 + 1.0 * len(table)), layout="constrained")
    axes = fig.subplots(len(table), 1, squeeze=False)[:, 0]
    for ax, row in zip(axes, table.to_dict("records")):
        scale, unit = (100.0, "pp") if row["unit"] == "share" else (1.0, "ms")
        margin = float(row["margin"]) * scale if row["margin"] is not None else math.nan
        d, lo, hi = (float(row[k]) * scale if row[k] is not None else math.nan for k in ("difference", "lo", "hi"))
        color = _DECISION_COLORS.get(row["decision"], "grey")
        if math.isfinite(margin):
            ax.axvspan(-margin, margin, color=style.PASS, alpha=0.12)
            ax.axvline(margin, color=style.LIMIT, linestyle="--", linewidth=1)
        ax.axvline(0, color="grey", linewidth=0.8)
        if math.isfinite(d) and math.isfinite(lo) and math.isfinite(hi):
            ax.errorbar([d], [0], xerr=[[d - lo], [hi - d]], fmt="o", color=color, capsize=5, linewidth=2)
            reach = max(abs(lo), abs(hi), 1.5 * margin if math.isfinite(margin) else 0.0)
            ax.set_xlim(-1.15 * reach, 1.15 * reach)
        else:
            ax.text(0.5, 0.5, "too few values", ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_yticks([])
        ax.set_ylabel(row["metric"], rotation=0, ha="right", va="center", fontsize=9)
        ax.set_xlabel(f"candidate - baseline ({unit}); green band: ±margin", fontsize=8)
        ax.set_title(str(row["decision"]).upper(), loc="right", fontsize=9, color=color)
    if title:
        fig.suptitle(title)
    return fig
