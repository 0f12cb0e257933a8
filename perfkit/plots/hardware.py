"""Figures for hardware comparison, TCO and fleets (notebooks 05 and 06), one function per figure.

Each takes the frames or results that :mod:`perfkit.analyze.hardware` computes
and returns a matplotlib ``Figure``; nothing here reads the store or computes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from perfkit.plots import style

if TYPE_CHECKING:
    from perfkit.analyze.hardware.fleet import FleetResult


def _note(ax: Axes, text: str | None) -> None:
    """A caveat under the plot (kept clear of the bars; inline figures are saved 'tight')."""
    if text:
        ax.text(0.0, -0.18, text, transform=ax.transAxes, va="top", ha="left", fontsize=8,
                bbox={"boxstyle": "round", "facecolor": "#fff8e0", "edgecolor": style.BAR})


def per_dollar_bars(metrics: pd.DataFrame, column: str = "perf_per_usd_hour", title: str = "",
                    unit: str = "", note: str | None = None, basis: str | None = None) -> Figure:
    """Horizontal bars of a per-dollar (or per-watt) metric, best first; devices without it listed.

    ``basis``: a column of ``metrics`` naming each figure's basis; bars whose basis starts with
    "estimate" are drawn hatched and grey, with that text in the legend, the others solid.
    """
    values = metrics[column].astype(float)
    have = values.dropna().sort_values()
    missing = [str(i) for i in values.index[values.isna()]]
    texts = metrics[basis].astype(str).reindex(have.index) if basis else pd.Series("", index=have.index)
    estimate = texts.str.startswith("estimate").to_numpy()
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(len(have), 3) + 1.2))
    names = [str(i) for i in have.index]
    for mask, is_est in ((~estimate, False), (estimate, True)):
        if mask.any():
            label = (texts[mask].iloc[0].split(":")[0] if is_est else "evidence (measured or MLPerf)") if basis else None
            ax.barh(np.arange(len(names))[mask], have.to_numpy()[mask], label=label,
                    color=style.ESTIMATE if is_est else style.BLUE, hatch="//" if is_est else None,
                    edgecolor="#555555" if is_est else None)
    ax.set_yticks(np.arange(len(names)), names)
    for y, v in enumerate(have.to_numpy()):
        ax.text(v, y, f" {v:,.3g}", va="center", fontsize=8)
    if len(have):
        ax.set_xlim(0, float(have.max()) * 1.2)
    if basis and len(have):
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel(unit or column)
    ax.set_title(title or column)
    if missing:
        note = ((note + "\n") if note else "") + "no figure (no public price or rate): " + ", ".join(missing)
    _note(ax, note)
    fig.tight_layout()
    return fig


def latency_throughput(runs: pd.DataFrame | None, slo_p99_ms: float, load_rps: float,
                       note: str | None = None) -> Figure:
    """P99 against achieved rate, one line per hardware label, with the SLO and the fixed load."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    if runs is None or runs.empty:
        ax.text(0.5, 0.5, "no measured runs labelled hardware=NAME in the store:\n"
                          "the comparison uses the catalog alone", ha="center", va="center",
                transform=ax.transAxes, fontsize=10)
        ax.set_axis_off()
        return fig
    for hw, group in runs.sort_values("achieved_rate_rps").groupby("hardware"):
        n = int(group["requests"].fillna(0).sum()) if "requests" in group else 0
        p99 = group["p99_ms"].to_numpy(dtype=float)
        lo = group["p99_ci_low_ms"].to_numpy(dtype=float) if "p99_ci_low_ms" in group else np.full(len(p99), np.nan)
        hi = group["p99_ci_high_ms"].to_numpy(dtype=float) if "p99_ci_high_ms" in group else np.full(len(p99), np.nan)
        # an interval without an upper end (too few requests) is drawn up to the plot's top
        top = np.nanmax(np.concatenate([p99, hi])) * 1.15
        yerr = np.vstack([np.clip(p99 - np.where(np.isnan(lo), p99, lo), 0, None),
                          np.clip(np.where(np.isnan(hi), top, hi) - p99, 0, None)])
        ax.errorbar(group["achieved_rate_rps"], p99, yerr=yerr, marker="o", capsize=3,
                    label=f"{hw} ({len(group)} runs, n={n:,} requests)")
    ax.axhline(slo_p99_ms, color=style.LIMIT, linestyle="--", linewidth=1, label=f"SLO P99 ≤ {slo_p99_ms:g} ms")
    ax.axvline(load_rps, color="grey", linestyle=":", linewidth=1, label=f"fixed load {load_rps:g} req/s")
    ax.set_xlabel("achieved rate (req/s)")
    ax.set_ylabel("P99 latency (ms); bars: 95 % interval")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.set_title("Latency–throughput per hardware (measured runs)")
    if "p99_ci_high_ms" in runs and runs["p99_ci_high_ms"].isna().any():
        note = ((note + "\n") if note else "") + ("a bar reaching the top has no upper bound: "
                                                   "too few requests to bound that P99")
    _note(ax, note)
    fig.tight_layout()
    return fig


def cost_breakdown(table: pd.DataFrame, per: str = "usd", title: str = "", note: str | None = None) -> Figure:
    """Stacked bars of rent / amortized capex / energy per device (``per``: usd or usd_per_h)."""
    parts = [("rent", style.BLUE), ("capex", style.ORANGE), ("energy", style.GREEN)]
    data = table.set_index("name")
    total = data[f"total_{per}"].astype(float)
    shown = data[total.notna()].sort_values(f"total_{per}")
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(len(shown), 3) + 1.2))
    left = np.zeros(len(shown))
    for part, color in parts:
        values = shown[f"{part}_{per}"].astype(float).fillna(0).to_numpy()
        if np.any(values > 0):
            ax.barh(shown.index, values, left=left, color=color, label=part)
        left += values
    for y, v in enumerate(left):
        ax.text(v, y, f" ${v:,.2f}", va="center", fontsize=8)
    if len(left) and left.max() > 0:
        ax.set_xlim(0, float(left.max()) * 1.2)
    ax.set_xlabel("USD" if per == "usd" else "USD per device-hour")
    ax.set_title(title or "Cost breakdown per device")
    ax.legend(fontsize=8, loc="lower right")
    missing = [str(i) for i in data.index[total.isna()]]
    if missing:
        note = ((note + "\n") if note else "") + "not costed (no public price): " + ", ".join(missing)
    _note(ax, note)
    fig.tight_layout()
    return fig


def fleet_composition(fleets: Mapping[str, "FleetResult"], costs: Mapping[str, float], title: str = "") -> Figure:
    """Stacked bars of hourly cost by hardware type, one bar per fleet (mixed vs single types)."""
    names = [k for k, r in fleets.items() if r.feasible]
    parts = {k: fleets[k].parts(costs) for k in names}
    labels = list(dict.fromkeys(label for k in names for label in parts[k]))
    fig, ax = plt.subplots(figsize=(7, 0.6 * max(len(names), 2) + 1.4))
    left = np.zeros(len(names))
    for i, label in enumerate(labels):
        vals = np.array([parts[k].get(label, (0, 0.0))[1] for k in names])
        ax.barh(names, vals, left=left, label=label, color=style.color(i),
                hatch="//" if label.endswith("(offline window)") else None)
        for y, k in enumerate(names):
            if vals[y] > 0:
                ax.text(left[y] + vals[y] / 2, y, f"{parts[k][label][0]}×", ha="center", va="center",
                        fontsize=8, color="white")
        left += vals
    for y, v in enumerate(left):
        ax.text(v, y, f" ${v:,.2f}/h", va="center", fontsize=8)
    if len(left) and left.max() > 0:
        ax.set_xlim(0, float(left.max()) * 1.2)
    ax.set_xlabel("USD per hour (averaged over the day)")
    ax.set_title(title or "Fleet composition and hourly cost")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def evidence_bars(evidence: pd.DataFrame, title: str = "", measured: pd.DataFrame | None = None) -> Figure:
    """Server and Offline result per accelerator (MLPerf rows), side by side, best Server first.

    ``measured``: the user's runs as points (``hardware``, ``value``, ``label``, ``value_units``), drawn
    as red diamonds on the row of their hardware label (a row of its own when MLPerf has none), each
    annotated with its label ("measured here: <run id>").
    """
    frame = evidence[["server_per_accelerator", "offline_per_accelerator"]].astype(float)
    frame = frame.sort_values("server_per_accelerator", na_position="first")
    rows = [str(i) for i in frame.index]
    points = measured if measured is not None else pd.DataFrame(columns=["hardware", "value", "label"])
    extra = [h for h in dict.fromkeys(points["hardware"].astype(str)) if h not in rows]
    rows = extra + rows
    y = np.arange(len(rows))
    shift = len(extra)
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * max(len(rows), 3) + 1.4))
    ax.barh(y[shift:] + 0.2, frame["server_per_accelerator"].fillna(0), 0.4, label="MLPerf Server (within latency bounds)")
    ax.barh(y[shift:] - 0.2, frame["offline_per_accelerator"].fillna(0), 0.4, label="MLPerf Offline")
    at = {name: i for i, name in enumerate(rows)}
    for k, (_, p) in enumerate(points.iterrows()):
        ax.scatter([float(p["value"])], [at[str(p["hardware"])]], marker="D", s=40, color=style.RED, zorder=3,
                   label=f"measured here ({p['value_units']}, --label hardware=NAME)" if k == 0 else None)
        ax.annotate(str(p["label"]), (float(p["value"]), at[str(p["hardware"])]), xytext=(4, 4 + 8 * (k % 2)),
                    textcoords="offset points", fontsize=7, color=style.RED)
    ax.set_yticks(y, rows)
    units = evidence["units"].dropna()
    ax.set_xlabel(f"{units.iloc[0] if len(units) else 'result'} per accelerator (MLPerf result / accelerators)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def token_latency(evidence: pd.DataFrame, title: str = "") -> Figure:
    """TTFT and TPOT P99 per accelerator (MLPerf Server rows) against the round's bounds."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.4 * max(len(evidence), 3) + 1.5), sharey=True)
    names = [str(i) for i in evidence.index]
    for ax, metric in zip(axes, ("ttft", "tpot")):
        ax.barh(names, evidence[f"{metric}_p99_ms"].fillna(0).to_numpy(), color=style.GREEN)
        bound = evidence[f"{metric}_bound_ms"].dropna()
        if len(bound):
            ax.axvline(float(bound.iloc[0]), color=style.LIMIT, linestyle="--", label=f"bound {bound.iloc[0]:g} ms")
            ax.legend(fontsize=8)
        ax.set_xlabel(f"{metric.upper()} P99, ms")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def sensitivity_lines(frame: pd.DataFrame, title: str = "") -> Figure:
    """Cost per accelerator as each parameter moves (one panel per parameter), log scale."""
    parameters = list(dict.fromkeys(frame["parameter"]))
    fig, axes = plt.subplots(1, max(len(parameters), 1), figsize=(4 * max(len(parameters), 1), 3.5), sharey=True)
    for ax, parameter in zip(np.atleast_1d(axes), parameters):
        part = frame[frame["parameter"] == parameter]
        for name, rows in part.groupby("accelerator"):
            ax.plot(rows["value"], rows["cost"], marker="o", label=str(name))
        ax.set_xlabel(parameter)
        ax.set_yscale("log")
    np.atleast_1d(axes)[0].set_ylabel("USD per unit")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
