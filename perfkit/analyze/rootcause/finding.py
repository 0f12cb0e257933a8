"""What a root-cause rule returns: a :class:`Finding`, its :class:`Chart`, and their ranking.

A finding holds numbers, not a figure: its :class:`Chart` names the kind of
figure and the data behind it, and :func:`perfkit.plots.diagnosis.finding_figure`
draws it. So the rules stay pure and a finding serialises as plain data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}
TABLE_COLUMNS = ["severity", "title", "numbers", "action", "rule", "runs"]


@dataclass(frozen=True)
class Chart:
    """The figure behind a finding: a kind :mod:`perfkit.plots.diagnosis` draws and its arguments.

    Kinds: ``breakdown`` (stacked bar of mean times), ``scatter`` (y against x),
    ``bars``, ``spectrum`` (latency by percentile with intervals) and
    ``timeline`` (values over the run's time, with marks and shaded spans).
    """

    kind: str
    data: dict[str, Any]


def chart(kind: str, **data: Any) -> Chart:
    """A :class:`Chart` from keyword arguments (those of the plotting function of ``kind``)."""
    return Chart(kind, data)


@dataclass
class Finding:
    """One diagnosed cause."""

    rule: str
    title: str
    severity: str                     # critical | high | medium | low
    numbers: dict[str, Any]
    action: str
    run_ids: list[str] = field(default_factory=list)
    impact: float = 0.0               # orders findings of equal severity (bigger first)
    chart: Chart | None = None

    def row(self) -> dict[str, Any]:
        """One table row: the scalar numbers as ``key=value`` text, the runs comma-separated."""
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in self.numbers.items() if not isinstance(v, (list, dict)))
        return {"severity": self.severity, "title": self.title, "numbers": shown,
                "action": self.action, "rule": self.rule, "runs": ",".join(self.run_ids)}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if math.isfinite(v) else "n/a"
    return str(v)


def rank(findings: Sequence[Finding]) -> list[Finding]:
    """Most severe first, then by impact."""
    return sorted(findings, key=lambda f: (-SEVERITY_RANK.get(f.severity, 0), -f.impact))


def findings_table(findings: Sequence[Finding]) -> pd.DataFrame:
    """The ranked findings as a table (severity, title, numbers, action, rule, runs)."""
    return pd.DataFrame([f.row() for f in rank(findings)], columns=TABLE_COLUMNS)
