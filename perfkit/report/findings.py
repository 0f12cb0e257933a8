"""Notebook 03's findings, one section per cause: a short title, where it was seen, the key numbers as
a small table, the figure and the action.

The display edge of :mod:`perfkit.analyze.rootcause`: the causes come from
:func:`perfkit.analyze.rootcause.group_findings`, the table from
:func:`perfkit.report.style.table`, the figure from
:func:`perfkit.plots.diagnosis.finding_figure`. The raw ``key=value`` strings
are not shown: they are in the JSON export (``perfkit diagnose --json``).
"""
from __future__ import annotations

import html
from typing import Sequence

from perfkit.analyze.rootcause.finding import CauseGroup
from perfkit.report.style import table


def cause_heading(group: CauseGroup, n_runs: int) -> str:
    """``<h3>The load generator fell behind</h3>`` and a line: severity, where seen, the worst case."""
    return (f"<h3>{html.escape(group.cause)}</h3>"
            f"<p><b>{html.escape(group.severity)}</b>, seen in {html.escape(group.seen_in(n_runs))}. "
            f"{html.escape(group.findings[0].title)}.</p>")


def show_causes(groups: Sequence[CauseGroup], n_runs: int, max_figures: int = 8) -> int:
    """Display every cause (heading, key numbers, the figure of its worst finding, action); the number
    of figures drawn, at most ``max_figures`` over all causes."""
    from IPython.display import HTML, display

    from perfkit.plots.diagnosis import finding_figure

    drawn = 0
    for group in groups:
        display(HTML(cause_heading(group, n_runs)))
        display(table(group.numbers(), labels={"run": "Run(s)"}))
        figure = next((f for f in group.findings if f.chart is not None), None)
        if figure is not None and drawn < max_figures:
            fig = finding_figure(figure)
            if fig is not None:
                display(fig)
                drawn += 1
        display(HTML(f"<p><b>Action.</b> {html.escape(group.action)}</p>"))
    return drawn
