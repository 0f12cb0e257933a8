"""Notebook 03's pages: one section per cause (a short title, where it was seen, the key numbers as a
small table, the figure and the action) and the run, batching and proxy tables, formatted.

The display edge of :mod:`perfkit.analyze.rootcause`: the causes come from
:func:`perfkit.analyze.rootcause.group_findings`, the table from
:func:`perfkit.report.style.table`, the figure from
:func:`perfkit.plots.diagnosis.finding_figure`. The raw ``key=value`` strings
are not shown: they are in the JSON export (``perfkit diagnose --json``).
"""
from __future__ import annotations

import html
from typing import TYPE_CHECKING, Sequence

from perfkit.analyze.rootcause.finding import CauseGroup
from perfkit.report.style import table

if TYPE_CHECKING:
    import pandas as pd
    from pandas.io.formats.style import Styler

#: The interval columns of :func:`perfkit.analyze.rootcause.runs_overview` and of the proxy table.
OVERVIEW_INTERVALS = {"p50_ms": ("p50_lo_ms", "p50_hi_ms"), "p99_ms": ("p99_lo_ms", "p99_hi_ms")}
PROXY_INTERVALS = {"direct_ms": ("direct_lo", "direct_hi"), "proxied_ms": ("proxied_lo", "proxied_hi")}
#: A cause's key numbers: the estimates shown with their intervals, and the headers of terse keys.
NUMBER_INTERVALS = {"hl_shift_ms": ("hl_lo_ms", "hl_hi_ms"), "p99_ms": ("p99_lo_ms", "p99_hi_ms")}
NUMBER_LABELS = {"run": "Run(s)", "hl_shift_ms": "Added latency (Hodges–Lehmann shift)", "spearman_rho": "Spearman ρ",
                 "q_bh": "q (Benjamini–Hochberg)", "p_value": "p-value", "p99_ms": "P99"}


def in_percent(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``frame`` with each of ``columns`` (a fraction of 1) replaced, in place, by ``<column>_pct``."""
    out = frame.copy()
    for column in columns:
        if column in out:
            at = out.columns.get_loc(column)
            out.insert(int(at), f"{column}_pct", 100 * out.pop(column))
    return out


def runs_view(overview: pd.DataFrame) -> Styler:
    """The runs table: P50 and P99 with their 95 % intervals in one cell each."""
    return table(overview, intervals=OVERVIEW_INTERVALS, labels={"run_id": "Run", "label": "Labels"},
                 caption="P50 and P99 with exact order-statistic 95 % intervals")


def batching_view(batching: pd.DataFrame) -> Styler:
    """The batching table, fill and padding in percent."""
    return table(in_percent(batching, ("batch_fill", "padding_share")), labels={"run_id": "Run", "label": "Labels"})


def proxy_view(proxy: pd.DataFrame) -> Styler:
    """The direct/proxied table: each side's percentile with its interval, the added ms and percent."""
    if proxy.empty:
        return table(proxy)
    confidence = float(proxy["confidence"].iloc[0])
    return table(in_percent(proxy.drop(columns=["confidence"]), ("added_share",)), intervals=PROXY_INTERVALS,
                 labels={"direct_run": "Direct run", "proxied_run": "Proxied run"},
                 caption=f"{confidence:.0%} order-statistic intervals; n = successful requests per side")


def cause_heading(group: CauseGroup, n_runs: int) -> str:
    """``<h3>The load generator fell behind</h3>`` and a line: severity, where seen, the worst case."""
    return (f"<h3>{html.escape(group.cause)}</h3>"
            f"<p><b>{html.escape(group.severity)}</b>, seen in {html.escape(group.seen_in(n_runs))}. "
            f"{html.escape(group.findings[0].title)}.</p>")


def numbers_view(group: CauseGroup) -> Styler:
    """A cause's key numbers as a table: one row per finding, estimates with their intervals."""
    frame = group.numbers()
    intervals = {k: v for k, v in NUMBER_INTERVALS.items() if k in frame and all(c in frame for c in v)}
    return table(frame, intervals=intervals, labels={k: v for k, v in NUMBER_LABELS.items() if k in frame})


def show_causes(groups: Sequence[CauseGroup], n_runs: int, max_figures: int = 8) -> int:
    """Display every cause (heading, key numbers, the figure of its worst finding, action); the number
    of figures drawn, at most ``max_figures`` over all causes."""
    from IPython.display import HTML, display

    from perfkit.plots.diagnosis import finding_figure

    drawn = 0
    for group in groups:
        display(HTML(cause_heading(group, n_runs)))
        display(numbers_view(group))
        figure = next((f for f in group.findings if f.chart is not None), None)
        if figure is not None and drawn < max_figures:
            fig = finding_figure(figure)
            if fig is not None:
                display(fig)
                drawn += 1
        display(HTML(f"<p><b>Action.</b> {html.escape(group.action)}</p>"))
    return drawn
