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


def store_before(path: Any, version: int) -> duckdb.DuckDBPyConnection:
    """A store as perfkit left it before migration ``version``: every earlier migration applied
    and recorded, the later ones not (the next :func:`perfkit.store.connect` applies them)."""
    from perfkit.store import db

    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, "
                "applied_at TIMESTAMPTZ DEFAULT now())")
    for mig in db.migrations():
        if mig.version < version:
            con.execute(mig.sql)
            con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [mig.version, mig.name])
    return con
