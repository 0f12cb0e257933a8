"""Figures for the model optimization lab (notebook 08), one function per figure.

Each takes the variant table of :func:`perfkit.optimize.results.variant_table`
(one row per variant) and returns a matplotlib ``Figure``; nothing here reads
the store or computes a statistic.
"""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from perfkit.plots import style

_COLORS = {"reference": style.REFERENCE, "quantization": style.BLUE, "unstructured pruning": style.ORANGE,
           "structured pruning": style.RED, "distillation": style.GREEN, "runtime": style.PURPLE}


def frontier(table: pd.DataFrame, x: str = "p99_ms", x_label: str = "P99 latency (ms)") -> Figure:
    """Accuracy (95 % interval) against a latency column (its interval where the table has ``<x>_lo/_hi``),
    one colour per technique, the Pareto frontier (faster and more accurate) joined by a line."""
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    stem = x.removesuffix("_ms")
    for technique, part in table.groupby("technique"):
        xerr = None
        if f"{stem}_lo" in part:
            xerr = [part[x] - part[f"{stem}_lo"], part[f"{stem}_hi"] - part[x]]
        ax.errorbar(part[x], 100 * part["accuracy"], xerr=xerr,
                    yerr=[100 * (part["accuracy"] - part["acc_lo"]), 100 * (part["acc_hi"] - part["accuracy"])],
                    fmt="o", capsize=3, color=_COLORS.get(str(technique), "grey"), label=str(technique))
        for row in part.itertuples():
            ax.annotate(str(row.variant), (getattr(row, x), 100 * row.accuracy), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
    front = table[table["pareto"]].sort_values(x)
    ax.step(front[x], 100 * front["accuracy"], where="post", color="grey", linestyle="--", label="Pareto frontier")
    ref = table.loc[table["variant"] == "fp32"]
    if len(ref):
        ax.axhline(99 * float(ref["accuracy"].iloc[0]), color=style.BAR, linewidth=0.8,
                   label="99 % of FP32 accuracy")
    ax.set_xlabel(x_label)
    ax.set_ylabel("accuracy on held-out digits (%)")
    ax.set_title("Accuracy against latency, per variant (95 % intervals)")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def ratio_bars(table: pd.DataFrame, columns: dict[str, str] | None = None) -> Figure:
    """Each variant's ratios to FP32 (below 1: smaller or faster), one panel per ratio."""
    columns = columns or {"size_ratio": "model file size", "rss_ratio": "server peak RSS",
                          "kernel_ratio": "model call alone (32 images)", "p99_ratio": "P99 on the serving path"}
    fig = Figure(figsize=(3.2 * len(columns), 0.35 * len(table) + 1.5), layout="constrained")
    axes = fig.subplots(1, len(columns), sharey=True, squeeze=False)[0]
    names = table["variant"].astype(str).tolist()
    colors = [_COLORS.get(str(t), "grey") for t in table["technique"]]
    for ax, (col, title) in zip(axes, columns.items()):
        ax.barh(names, table[col], color=colors)
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_title(f"{title}\n(x FP32)", fontsize=9)
    axes[0].invert_yaxis()
    return fig
