"""The DuckDB store: the one place that opens, writes and reads perfkit's database.

* :mod:`perfkit.store.db`: opening a file, numbered schema migrations
  (``perfkit/sql/NNNN-name.sql``), transactions, the writer's lock wait.
* :mod:`perfkit.store.write`: the one writer of runs, requests, token gaps,
  sources, series and samples (bulk, Arrow in, inside the caller's transaction).
* :mod:`perfkit.store.runs`: the one reader of runs and requests, aggregated in
  SQL so that only small frames come up.

The store imports no stage: bench, ingest, analyze and report all build on it.
The tables are described in ``docs/architecture.md``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from perfkit.store.db import (StoreError, connect, migrate, migrations, parse_label, schema_version,
                              to_json, transaction)

if TYPE_CHECKING:
    from perfkit.store.runs import get_run, list_runs


def __getattr__(name: str) -> Any:
    """``get_run`` and ``list_runs`` load the run reader on first use: it pulls in pandas
    and scipy, which writers (``perfkit ingest``) never need."""
    if name in ("get_run", "list_runs"):
        from perfkit.store import runs

        return getattr(runs, name)
    raise AttributeError(f"module 'perfkit.store' has no attribute {name!r}")

__all__ = ["StoreError", "connect", "get_run", "list_runs", "migrate", "migrations", "parse_label",
           "schema_version", "to_json", "transaction"]
