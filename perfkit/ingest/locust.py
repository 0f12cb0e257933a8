"""Locust ``--csv PREFIX`` outputs -> a closed-loop run row plus its aggregates as series.

Files of one run share a prefix: ``PREFIX_stats.csv`` (final aggregates, needed),
``PREFIX_stats_history.csv`` (one row per second and endpoint, with
``--csv-full-history``), ``PREFIX_failures.csv`` (and ``_exceptions.csv``, read
for its row count only). Locust is a closed-loop generator: each user waits for
its response before the next request, so a slow server slows the offered load
(coordinated omission). The run is recorded with ``pattern = closed`` and
``scenario.closed_loop = true`` so no report mistakes it for an open-loop run.
Response times in Locust's files are milliseconds.
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from datetime import datetime, timezone
from pathlib import Path

from perfkit.errors import InputError
from perfkit.ingest.frames import Telemetry, from_rows, labels_json

SUFFIXES = ("_stats_history.csv", "_stats.csv", "_failures.csv", "_exceptions.csv")
_PCT = re.compile(r"^(\d+(?:\.\d+)?)%$")
# Series read from both files: ``locust_<suffix>`` per second and endpoint from
# _stats_history.csv, ``locust_final_<suffix>`` per endpoint from _stats.csv; the
# percentile columns (``50%``...) become ``<prefix>response_time_ms{quantile}``.
# (suffix, unit, type, _stats_history.csv column, _stats.csv column)
COLUMNS: tuple[tuple[str, str, str, str | None, str | None], ...] = (
    ("requests_per_s", "requests/s", "gauge", "Requests/s", "Requests/s"),
    ("failures_per_s", "requests/s", "gauge", "Failures/s", None),
    ("requests_total", "count", "counter", "Total Request Count", "Request Count"),
    ("failures_total", "count", "counter", "Total Failure Count", "Failure Count"),
    ("response_time_mean_ms", "ms", "gauge", "Total Average Response Time", "Average Response Time"),
    ("response_time_min_ms", "ms", "gauge", None, "Min Response Time"),
    ("response_time_max_ms", "ms", "gauge", "Total Max Response Time", "Max Response Time"),
)
HISTORY, FINAL = "locust_", "locust_final_"


def group(paths: list[str]) -> list[list[str]]:
    """Group files by their ``--csv`` prefix, in the order first seen."""
    groups: dict[str, list[str]] = {}
    for p in paths:
        for suffix in SUFFIXES:
            if p.endswith(suffix):
                groups.setdefault(p[: -len(suffix)], []).append(p)
                break
        else:
            raise InputError(p, None, "not a Locust --csv output (expected PREFIX_stats.csv, "
                                      "PREFIX_stats_history.csv or PREFIX_failures.csv)")
    out = []
    for prefix, files in groups.items():
        if not any(f.endswith("_stats.csv") for f in files):
            raise InputError(prefix + "_stats.csv", None,
                             "missing: a Locust run needs its PREFIX_stats.csv")
        out.append(sorted(files))
    return out


def _rows(text: str, path: str, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        raise InputError(path, 1, "empty file")
    missing = [c for c in required if c not in reader.fieldnames]
    if missing:
        raise InputError(path, 1, f"not a Locust CSV: missing column(s) {', '.join(missing)}")
    rows = []
    for i, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            raise InputError(path, i, f"{len(row)} fields do not match the header")
        rows.append((i, row))
    return rows


def _num(value: str, path: str, line: int, column: str) -> float | None:
    value = value.strip()
    if value in ("", "N/A"):
        return None
    try:
        return float(value)
    except ValueError:
        raise InputError(path, line, f"column {column!r}: not a number: {value!r}") from None


def _row_samples(row: dict[str, str], path: str, line: int, ts: float, labels: dict[str, str],
                 prefix: str) -> list[tuple]:
    """One CSV row's samples (:data:`COLUMNS`, then each ``NN%`` column as a quantile)."""
    out: list[tuple] = []
    for suffix, unit, typ, history_col, final_col in COLUMNS:
        col = history_col if prefix == HISTORY else final_col
        if col is not None and col in row:
            v = _num(row[col], path, line, col)
            if v is not None:
                out.append((prefix + suffix, labels_json(labels), unit, typ, ts, v))
    for col, cell in row.items():
        m = _PCT.match(col)
        if m:
            v = _num(cell, path, line, col)
            if v is not None:
                out.append((prefix + "response_time_ms",
                            labels_json({**labels, "quantile": repr(float(m.group(1)) / 100.0)}),
                            "ms", "summary", ts, v))
    return out


def read(files: dict[str, str]) -> Telemetry:
    """One Locust run from its files (path -> text)."""
    stats_path = next(p for p in files if p.endswith("_stats.csv"))
    stats = _rows(files[stats_path], stats_path, ("Type", "Name", "Request Count", "Failure Count"))
    hist_path = next((p for p in files if p.endswith("_stats_history.csv")), None)
    fail_path = next((p for p in files if p.endswith("_failures.csv")), None)
    long: list[tuple] = []

    t_start = t_end = None
    max_users = 0.0
    if hist_path:
        hist = _rows(files[hist_path], hist_path, ("Timestamp", "User Count", "Name"))
        for line, row in hist:
            ts = _num(row["Timestamp"], hist_path, line, "Timestamp")
            if ts is None:
                raise InputError(hist_path, line, "missing Timestamp")
            t_start = ts if t_start is None else min(t_start, ts)
            t_end = ts if t_end is None else max(t_end, ts)
            users = _num(row["User Count"], hist_path, line, "User Count")
            if users is not None:
                max_users = max(max_users, users)
                if row["Name"] == "Aggregated":
                    long.append(("locust_users", labels_json({}), "count", "gauge", ts, users))
            long += _row_samples(row, hist_path, line, ts,
                                 {"type": row.get("Type", ""), "name": row["Name"]}, HISTORY)
    agg = next((r for _, r in stats if r["Name"] == "Aggregated"), None)
    if agg is None:
        raise InputError(stats_path, None, "no 'Aggregated' row")
    agg_line = next(i for i, r in stats if r is agg)
    end_ts = t_end if t_end is not None else datetime.now(timezone.utc).timestamp()
    for line, row in stats:
        long += _row_samples(row, stats_path, line, end_ts,
                             {"type": row.get("Type", ""), "name": row["Name"]}, FINAL)
    failures_by_error: dict[str, float] = {}
    if fail_path:
        for line, row in _rows(files[fail_path], fail_path, ("Method", "Name", "Error", "Occurrences")):
            n = _num(row["Occurrences"], fail_path, line, "Occurrences") or 0.0
            failures_by_error[row["Error"]] = failures_by_error.get(row["Error"], 0.0) + n
            long.append(("locust_failures_by_error_total",
                         labels_json({"method": row["Method"], "name": row["Name"],
                                      "error": row["Error"]}),
                         "count", "counter", end_ts, n))
    tel = from_rows(long)
    tel.run = _run_row(stats_path, agg, agg_line, t_start, t_end, max_users, failures_by_error, files)
    return tel


def _run_row(stats_path: str, agg: dict[str, str], line: int, t_start: float | None,
             t_end: float | None, max_users: float, failures: dict[str, float],
             files: dict[str, str]) -> dict:
    def num(col: str) -> float | None:
        return _num(agg[col], stats_path, line, col) if col in agg else None

    requests = int(num("Request Count") or 0)
    failed = int(num("Failure Count") or 0)
    duration = (t_end - t_start) if (t_start is not None and t_end is not None) else None
    pct = {k: num(c) for k, c in (("p50", "50%"), ("p90", "90%"), ("p95", "95%"),
                                   ("p99", "99%"), ("p999", "99.9%"))}
    digest = hashlib.sha256("".join(files[p] for p in sorted(files)).encode()).hexdigest()[:6]
    started = datetime.fromtimestamp(t_start, timezone.utc) if t_start is not None else None
    stamp = started.strftime("%Y%m%dT%H%M%SZ") if started else "undated"
    prefix = Path(stats_path).name[: -len("_stats.csv")]
    summary = {
        "format_version": 1,
        "status": "completed",
        "requests": requests, "ok": requests - failed,
        "errors": {"failed": failed, **{k: int(v) for k, v in failures.items()}},
        "achieved_rate_rps": num("Requests/s"),
        "intended_rate_rps": None,
        "duration_s": duration,
        "latency_ms": {"mean": num("Average Response Time"), **pct,
                       "max": num("Max Response Time")},
        "closed_loop": True,
        "latency_note": ("Locust is closed-loop and times from the actual send: latency "
                         "under overload is understated (coordinated omission)"),
    }
    return {
        "run_id": f"locust-{stamp}-{digest}",
        "label": prefix,
        "labels": {},
        "target": None,
        "protocol": "locust",
        "pattern": "closed",
        "scenario": {"closed_loop": True, "bucket": "closed-loop (Locust)",
                     "max_users": max_users or None, "files": sorted(Path(p).name for p in files)},
        "started_at": started,
        "ended_at": datetime.fromtimestamp(t_end, timezone.utc) if t_end is not None else None,
        "t0_unix_s": t_start,
        "status": "completed",
        "duration_s": duration,
        "intended_rate_rps": None,
        "tool": "locust",
        "tool_version": None,
        "machine": {"note": "imported from Locust CSV; the load generator's machine is unknown"},
        "summary": {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in summary.items()},
    }
