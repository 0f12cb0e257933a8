"""The bench stage's reads of the store: a run's rows for its summary, a sweep's runs.

The only SQL in :mod:`perfkit.bench` besides the writer (:mod:`perfkit.store.write`);
values are bound parameters, column names come from the fixed lists below.
"""
from __future__ import annotations

from typing import Any

import duckdb
import numpy as np

from perfkit.store.runs import MEASURED, column_sql, phase_counts
from perfkit.summary import ErrorBody, RunSummary, load

#: Error kinds that mean the request failed at the connection level (no HTTP answer).
CONNECTION_ERRORS = ("connection_refused", "connect_error", "connection_reset", "timeout")
#: The numeric ``requests`` columns the summary is computed from (NULL -> NaN).
SUMMARY_COLUMNS = ("seq", "intended_unix_s", "sent_unix_s", "done_unix_s", "latency_ms", "service_ms",
                   "connect_ms", "ttft_ms", "ttft_intended_ms", "tpot_ms", "itl_ms_max", "output_tokens")
#: Per-request series derived in SQL by the store's one expression for each (:func:`column_sql`):
#: TPOT including TTFT, and the mean of the request's own inter-token gaps.
DERIVED_COLUMNS = ("tpot_incl_ttft_ms", "itl_request_mean_ms")


def _counts(con: duckdb.DuckDBPyConnection, column: str, run_id: str) -> dict[str, int]:
    """``{value: count}`` of a text column (from SUMMARY's fixed list) over a run's rows."""
    assert column in ("error_kind", "payload_class")
    rows = con.execute(f"SELECT {column}, count(*) FROM requests WHERE run_id = ? AND {column} IS NOT NULL "
                       f"AND {MEASURED} GROUP BY 1 ORDER BY 1", [run_id]).fetchall()
    return {str(k): int(c) for k, c in rows}


def error_bodies(con: duckdb.DuckDBPyConnection, run_id: str, top: int = 5) -> list[ErrorBody]:
    """The ``top`` most common (status, body) of each error kind's failed answers, most frequent first."""
    rows = con.execute(
        "SELECT error_kind, status_code, error_body, count(*) AS n FROM requests "
        f"WHERE run_id = ? AND error_kind IS NOT NULL AND error_body IS NOT NULL AND {MEASURED} GROUP BY 1, 2, 3 "
        "QUALIFY row_number() OVER (PARTITION BY error_kind ORDER BY n DESC, status_code, error_body) <= ? "
        "ORDER BY error_kind, n DESC, status_code, error_body", [run_id, top]).fetchall()
    return [{"kind": str(k), "status": None if s is None else int(s), "body": str(b), "count": int(n)}
            for k, s, b, n in rows]


def load_columns(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """A run's rows column-wise, numeric only (NULL -> NaN), in seq order, plus the
    per-request booleans ``ok``/``conn_err``, the inter-token gaps of successful requests
    (``gap_ms``), the ``errors``/``payload_classes`` counts and the most common
    ``error_bodies`` (computed in SQL, so that no per-row strings are held in Python).

    Only the measured phase's rows: warm-up and cool-down requests are left out of
    everything here but ``phases``, the count of stored rows per phase."""
    conn_list = ", ".join("?" for _ in CONNECTION_ERRORS)
    derived = "".join(f"{column_sql(name)} AS {name}, " for name in DERIVED_COLUMNS)
    sql = (f"SELECT {', '.join(SUMMARY_COLUMNS)}, {derived}error_kind IS NULL AS ok, "
           f"coalesce(error_kind IN ({conn_list}), false) AS conn_err "
           f"FROM requests WHERE run_id = ? AND {MEASURED} ORDER BY seq")
    res = con.execute(sql, [*CONNECTION_ERRORS, run_id]).fetchnumpy()
    out: dict[str, Any] = {}
    for k, v in res.items():
        if isinstance(v, np.ma.MaskedArray):
            v = v.filled(False) if k in ("ok", "conn_err") else np.ma.filled(v.astype(np.float64), np.nan)
        out[k] = np.asarray(v)
    out["errors"] = _counts(con, "error_kind", run_id)
    out["payload_classes"] = _counts(con, "payload_class", run_id)
    out["error_bodies"] = error_bodies(con, run_id)
    out["gap_ms"] = con.execute(
        "SELECT g.gap_ms FROM token_gaps g JOIN requests r ON r.run_id = g.run_id AND r.seq = g.seq "
        f"WHERE g.run_id = ? AND r.error_kind IS NULL AND {MEASURED}", [run_id]).fetchnumpy()["gap_ms"]
    out["phases"] = phase_counts(con, run_id)
    return out


def sweep_summaries(con: duckdb.DuckDBPyConnection, sweep_id: str) -> list[RunSummary]:
    """The summaries of a sweep's runs (label ``sweep=<id>``), oldest first, checked
    against the summary contract; runs without a summary (still running) are left out."""
    rows = con.execute(
        "SELECT summary FROM runs WHERE json_extract_string(labels, '$.sweep') = ? AND summary IS NOT NULL "
        "ORDER BY started_at", [sweep_id]).fetchall()
    return [load(text) for (text,) in rows]


def segment_runs(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The ids of the runs that are one segment of a split schedule (``perfkit bench --segment``)."""
    rows = con.execute("SELECT run_id FROM runs WHERE json_extract(scenario, '$.segment.index') IS NOT NULL "
                       "ORDER BY started_at").fetchall()
    return [str(r[0]) for r in rows]


def run_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> tuple[Any, Any]:
    """A run's ``requests`` and ``token_gaps`` rows, every column but run_id, as Arrow tables."""
    requests = con.sql("SELECT * EXCLUDE (run_id) FROM requests WHERE run_id = ? ORDER BY seq",
                       params=[run_id]).to_arrow_table()
    gaps = con.sql("SELECT * EXCLUDE (run_id) FROM token_gaps WHERE run_id = ? ORDER BY seq",
                   params=[run_id]).to_arrow_table()
    return requests, gaps
