"""Builders for test data in a real store: one ``make_run`` instead of hand-written INSERTs.

Rows go through the package's own writer (:mod:`perfkit.store.write`), so a test
store looks exactly like one that ``perfkit bench`` or an importer wrote.
"""
from __future__ import annotations

from typing import Any, Mapping

import duckdb

from perfkit.store import write


def make_run(con: duckdb.DuckDBPyConnection, run_id: str, *,
             labels: Mapping[str, str] | None = None, summary: Mapping[str, Any] | None = None,
             status: str = "completed", started_at: str | None = "now", **columns: Any) -> str:
    """Insert one ``runs`` row and return its id.

    ``labels`` fill both ``label`` (``k=v,...``) and ``labels`` (JSON);
    ``started_at="now"`` stamps the current time; any other ``runs`` column may be
    given by name (``t0_unix_s=0``, ``duration_s=60``, ``intended_rate_rps=10``...).
    """
    row: dict[str, Any] = {"run_id": run_id, "status": status}
    if labels is not None:
        row["label"] = ",".join(f"{k}={v}" for k, v in labels.items())
        row["labels"] = dict(labels)
    if summary is not None:
        row["summary"] = dict(summary)
    row.update(columns)
    if started_at == "now":
        started_at = con.execute("SELECT CAST(now() AS VARCHAR)").fetchone()[0]  # type: ignore[index]
    if started_at is not None:
        row["started_at"] = started_at
    write.insert_run(con, row)
    return run_id
