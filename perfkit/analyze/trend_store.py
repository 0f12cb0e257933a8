"""The trends' SQL: a case's runs as a history (one point per run, with its interval) and acknowledgements.

A case is the run label ``case=NAME`` (:data:`perfkit.names.LABEL_CASE`), a
version the label ``version=...`` (:data:`perfkit.names.LABEL_VERSION`; the
pipeline sets it from ``$PERFKIT_VERSION_LABEL``). Only completed runs count.
Percentiles come from the run's requests through :mod:`perfkit.store.runs`
(exact order-statistic intervals); a run without request rows (an import) falls
back to its summary's point value, without an interval. Acknowledgements live in
``trend_acknowledgements`` (migration 0008).
"""
from __future__ import annotations

import datetime as dt
import getpass
import json
import math
import os
from typing import Any, Sequence

import duckdb
import pandas as pd

from perfkit.analyze.history import DEFAULT_MARGIN, HISTORY_COLUMNS, ChangePoint, Trend, trend
from perfkit.names import LABEL_CASE, LABEL_VERSION
from perfkit.quantiles import proportion_ci
from perfkit.store import runs as store_runs

#: metric -> (requests column, quantile); the names ``perfkit history --metric`` takes.
PERCENTILE_METRICS: dict[str, tuple[str, float]] = {
    "p50_ms": ("latency_ms", 0.50), "p90_ms": ("latency_ms", 0.90), "p95_ms": ("latency_ms", 0.95),
    "p99_ms": ("latency_ms", 0.99), "p999_ms": ("latency_ms", 0.999),
    "ttft_p50_ms": ("ttft_ms", 0.50), "ttft_p99_ms": ("ttft_ms", 0.99),
    "tpot_p50_ms": ("tpot_ms", 0.50), "tpot_p99_ms": ("tpot_ms", 0.99),
}
ERROR_RATE = "error_rate"
METRICS = (*PERCENTILE_METRICS, ERROR_RATE)
#: What `perfkit trend` and notebook 07 follow when no metric is named.
DEFAULT_METRICS = ("p50_ms", "p99_ms")
_SUMMARY_KEY = {"latency_ms": "latency_ms", "ttft_ms": "ttft_ms", "tpot_ms": "tpot_ms"}


def check_metric(metric: str) -> str:
    """``metric`` if it is one :data:`METRICS` names, else a ValueError listing them."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; one of {', '.join(METRICS)}")
    return metric


def cases(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every case with at least one completed run, by name."""
    rows = con.execute(
        "SELECT DISTINCT json_extract_string(labels, ?) AS c FROM runs "
        "WHERE status = 'completed' AND c IS NOT NULL ORDER BY c", [f"$.{LABEL_CASE}"]).fetchall()
    return [str(r[0]) for r in rows]


def case_runs(con: duckdb.DuckDBPyConnection, case: str) -> pd.DataFrame:
    """The completed runs of ``case``, oldest first: id, start, version, tool version, machine, summary."""
    frame = con.execute(
        "SELECT run_id, started_at, json_extract_string(labels, ?) AS version, tool_version, "
        "json_extract_string(machine, '$.hostname') AS machine, summary FROM runs "
        "WHERE status = 'completed' AND json_extract_string(labels, ?) = ? "
        "ORDER BY started_at NULLS LAST, run_id",
        [f"$.{LABEL_VERSION}", f"$.{LABEL_CASE}", case]).df()
    frame["started_at"] = [_iso(v) for v in frame["started_at"]]
    return frame


def _iso(value: Any) -> str:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return ""
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return str(ts.isoformat(timespec="seconds"))


def _summary_point(summary: Any, column: str, q: float) -> float:
    data = json.loads(summary) if isinstance(summary, str) else (summary or {})
    key = "p999" if q == 0.999 else f"p{round(q * 100)}"
    value = (data.get(_SUMMARY_KEY[column]) or {}).get(key)
    return math.nan if value is None else float(value)


def _point(con: duckdb.DuckDBPyConnection, run: pd.Series, metric: str) -> tuple[float, float, float, int]:
    """(value, lo, hi, n) of one run's metric."""
    if metric == ERROR_RATE:
        totals = store_runs.totals(con, str(run["run_id"]))
        est = proportion_ci(int(totals.get("errors") or 0), int(totals.get("requests") or 0))
        return est.value, est.lo, est.hi, est.n
    column, q = PERCENTILE_METRICS[metric]
    est = store_runs.percentiles(con, str(run["run_id"]), column, [q])[q]
    if est.n == 0:
        return _summary_point(run["summary"], column, q), math.nan, math.nan, 0
    return est.value, est.lo, est.hi, est.n


def case_history(con: duckdb.DuckDBPyConnection, case: str, metric: str = "p99_ms") -> pd.DataFrame:
    """One metric of one case over its runs, oldest first: :data:`perfkit.analyze.history.HISTORY_COLUMNS`."""
    check_metric(metric)
    runs = case_runs(con, case)
    rows = []
    for _, run in runs.iterrows():
        value, lo, hi, n = _point(con, run, metric)
        rows.append({"run_id": run["run_id"], "started_at": run["started_at"], "case": case,
                     "version": run["version"] or "", "tool_version": run["tool_version"] or "",
                     "machine": run["machine"] or "", "value": value, "lo": lo, "hi": hi, "n": n})
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))


def acknowledged(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every acknowledgement: change id, case, metric, run, who, when, why (newest first)."""
    return con.execute(
        "SELECT change_id, case_name AS case, metric, run_id, acknowledged_by, acknowledged_at, reason "
        "FROM trend_acknowledgements ORDER BY acknowledged_at DESC").df()


def acknowledged_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The acknowledged change ids."""
    return [str(r[0]) for r in con.execute("SELECT change_id FROM trend_acknowledgements").fetchall()]


def who() -> str:
    """Whoever acknowledges: ``$USER``, else the login name."""
    return os.environ.get("USER") or getpass.getuser()


def acknowledge(con: duckdb.DuckDBPyConnection, change: ChangePoint, reason: str,
                by: str | None = None, at: dt.datetime | None = None) -> None:
    """Record that ``change`` is known and accepted (replaces an earlier acknowledgement of it)."""
    con.execute(
        "INSERT OR REPLACE INTO trend_acknowledgements "
        "(change_id, case_name, metric, run_id, acknowledged_by, acknowledged_at, reason) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [change.change_id, change.case, change.metric, change.run_id, by or who(),
         at or dt.datetime.now(dt.timezone.utc), reason])


def histories(con: duckdb.DuckDBPyConnection, case_names: Sequence[str],
              metrics: Sequence[str]) -> dict[tuple[str, str], pd.DataFrame]:
    """``{(case, metric): history}`` for every pair."""
    return {(c, m): case_history(con, c, m) for c in case_names for m in metrics}


def load_trend(con: duckdb.DuckDBPyConnection, case_names: Sequence[str] = (),
               metrics: Sequence[str] = DEFAULT_METRICS, margin: float = DEFAULT_MARGIN) -> Trend:
    """Every named case (all when none) and metric, with change points and acknowledgements applied."""
    for m in metrics:
        check_metric(m)
    known = cases(con)
    unknown = [c for c in case_names if c not in known]
    if unknown:
        raise ValueError(f"no completed run of case {', '.join(unknown)} (cases: {', '.join(known) or 'none'})")
    return trend(histories(con, list(case_names) or known, metrics), margin=margin,
                 acknowledged=acknowledged_ids(con))
