"""What a root-cause rule returns: a :class:`Finding`, its :class:`Chart`, and their ranking.

A finding holds numbers, not a figure: its :class:`Chart` names the kind of
figure and the data behind it, and :func:`perfkit.plots.diagnosis.finding_figure`
draws it. So the rules stay pure and a finding serialises as plain data
(:meth:`Finding.to_dict`, the JSON export of ``perfkit diagnose --json``).

Findings of one rule over several runs are one cause: :func:`group_findings`
gathers them into a :class:`CauseGroup` (a short title from :data:`CAUSES`, the
worst severity, the runs it was seen in, one action), and
:meth:`CauseGroup.numbers` is its key numbers as a small table, one row per
finding, the column names carrying their units (``_ms``, ``_pct``) for
:func:`perfkit.report.style.table`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}
TABLE_COLUMNS = ["severity", "title", "numbers", "action", "rule", "runs"]
CAUSE_COLUMNS = ["severity", "cause", "seen_in", "action"]

#: Each rule's cause as a short title, and as the phrase a summary counts runs with
#: ("the load generator fell behind" + " in 5 of 6 runs").
CAUSES: dict[str, tuple[str, str]] = {
    "schedule_lag": ("The load generator fell behind", "the load generator fell behind"),
    "slo": ("P99 misses the SLO", "P99 missed the SLO"),
    "availability": ("Requests failed in bursts", "requests failed in bursts"),
    "fixed_batching": ("Fixed batching ignores the load", "the batch did not follow the load"),
    "queueing": ("Requests wait in the queue", "queue wait dominated latency"),
    "padding": ("Padding wastes compute", "padding took a share of the rows computed"),
    "proxy_overhead": ("The proxy adds latency", "the proxy added latency"),
    "load_latency": ("P99 rises with load", "P99 rose with load"),
    "littles_law": ("Little's law does not balance", "Little's law did not balance"),
    "change_point": ("Latency shifted during the run", "latency shifted during the run"),
    "correlation": ("P99 moves with a resource", "P99 moved with a resource"),
    "cold_start": ("Requests waited for a model load", "requests waited for a model load"),
    "kv_cache_pressure": ("The KV cache is full", "the KV cache filled up"),
    "gpu_memory": ("GPU memory limits the batch", "GPU memory limited the batch"),
    "gpu_underuse": ("The GPU is underused", "the GPU was underused"),
}

#: Rules whose finding compares runs and is about its last one (the proxied run of a direct/proxied pair).
PAIR_RULES = frozenset({"proxy_overhead"})

#: Numbers that are fractions of 1 (by key suffix or prefix): the key table shows them in percent.
_SHARE_SUFFIXES = ("_share", "_fraction", "_usage")
_SHARE_PREFIXES = ("added_share", "availability_")


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

    @property
    def cause(self) -> str:
        """The short title of this finding's cause (:data:`CAUSES`; the rule name when it has none)."""
        return CAUSES.get(self.rule, (self.rule, self.rule))[0]

    def row(self) -> dict[str, Any]:
        """One table row: the scalar numbers as ``key=value`` text, the runs comma-separated."""
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in self.numbers.items() if not isinstance(v, (list, dict)))
        return {"severity": self.severity, "title": self.title, "numbers": shown,
                "action": self.action, "rule": self.rule, "runs": ",".join(self.run_ids)}

    def to_dict(self) -> dict[str, Any]:
        """The JSON export: :meth:`row`'s fields, the cause, every number as data and as ``key=value`` text."""
        row = self.row()
        return {**row, "cause": self.cause, "numbers": dict(self.numbers), "numbers_text": row["numbers"],
                "run_ids": list(self.run_ids), "impact": self.impact,
                "chart": self.chart.kind if self.chart else None}


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


def shown_number(key: str, value: Any) -> tuple[str, Any]:
    """A number as the key table shows it: a fraction of 1 in percent, named ``<key>_pct``
    (``queue_share`` 0.42 -> ``queue_share_pct`` 42.0); ``_percent`` keys renamed ``_pct``; others as they are."""
    if key.endswith("_percent"):
        return key[: -len("_percent")] + "_pct", value
    is_share = key.endswith(_SHARE_SUFFIXES) or key.startswith(_SHARE_PREFIXES)
    if is_share and isinstance(value, (int, float)) and not isinstance(value, bool):
        return key + "_pct", 100.0 * value
    return key, value


@dataclass
class CauseGroup:
    """The findings of one rule over a set of runs: one cause, said once."""

    rule: str
    findings: list[Finding]           # ranked, most severe first

    @property
    def cause(self) -> str:
        return self.findings[0].cause

    @property
    def phrase(self) -> str:
        """The cause as a phrase to count runs with (``the load generator fell behind``)."""
        return CAUSES.get(self.rule, (self.rule, self.rule))[1]

    @property
    def severity(self) -> str:
        return self.findings[0].severity

    @property
    def action(self) -> str:
        return self.findings[0].action

    @property
    def run_ids(self) -> list[str]:
        """The runs this cause was seen in, in order, without repeats: every run its findings name, but only
        the last of a pair rule's (the proxied run, not its direct baseline)."""
        return list(dict.fromkeys(r for f in self.findings
                                  for r in (f.run_ids[-1:] if self.rule in PAIR_RULES else f.run_ids)))

    def seen_in(self, n_runs: int) -> str:
        """``5 of 6 runs`` (``n_runs``: the runs diagnosed)."""
        return f"{len(self.run_ids)} of {n_runs} run{'s' if n_runs != 1 else ''}"

    def numbers(self) -> pd.DataFrame:
        """The key numbers, one row per finding (its runs first): scalars only, fractions in percent
        (:func:`shown_number`); lists and mappings stay in the JSON export."""
        rows = [{"run": ", ".join(f.run_ids),
                 **dict(shown_number(k, v) for k, v in f.numbers.items() if not isinstance(v, (list, dict, tuple)))}
                for f in self.findings]
        return pd.DataFrame(rows)


def group_findings(findings: Sequence[Finding]) -> list[CauseGroup]:
    """The findings grouped by rule, each group's findings ranked, the groups by their worst finding."""
    by_rule: dict[str, list[Finding]] = {}
    for f in rank(findings):
        by_rule.setdefault(f.rule, []).append(f)
    return [CauseGroup(rule, fs) for rule, fs in by_rule.items()]


def causes_table(groups: Sequence[CauseGroup], n_runs: int) -> pd.DataFrame:
    """One row per cause: severity, short title, the runs it was seen in, the action."""
    return pd.DataFrame([{"severity": g.severity, "cause": g.cause, "seen_in": g.seen_in(n_runs),
                          "action": g.action} for g in groups], columns=CAUSE_COLUMNS)
